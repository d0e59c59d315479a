"""Telling when the discovery directory changes: inotify (Linux, through
ctypes) when available, else polling the directory's mtime every 100 ms.
A record that is rewritten atomically (renamed into place) or removed
changes the directory, so both see every publish and clean exit; a crash
leaves its record behind and is noticed by the connection closing."""

import ctypes
import ctypes.util
import os
import select
import struct
import threading
import time

IN_MODIFY = 0x2
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
WATCH_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF
POLL_INTERVAL_S = 0.1


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1, libc.inotify_add_watch  # noqa: B018 - present?
        return libc
    except (OSError, AttributeError):
        return None


class DirWatcher:
    """wait(timeout) returns True when `directory` may have changed. Uses
    inotify unless `use_inotify` is False or it is unavailable."""

    def __init__(self, directory, use_inotify=True):
        self.directory = directory
        self._fd = None
        self._watching = False
        self._stamp = self._mtime()
        self._stop_r, self._stop_w = os.pipe()
        libc = _libc() if use_inotify else None
        if libc is not None:
            fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd >= 0:
                self._libc, self._fd = libc, fd
                self._add_watch()

    @property
    def kind(self):
        return "inotify" if self._fd is not None else "poll"

    def _mtime(self):
        try:
            st = os.stat(self.directory)
            return (st.st_ino, st.st_mtime_ns)
        except OSError:
            return None

    def _add_watch(self):
        # The directory may not exist yet (no server ever ran): until it
        # does, wait() polls for it.
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(self.directory), WATCH_MASK)
        self._watching = wd >= 0

    def wait(self, timeout):
        """Blocks up to `timeout` s; True if the directory changed."""
        if self._fd is not None and self._watching:
            ready, _, _ = select.select([self._fd, self._stop_r], [], [], timeout)
            if self._fd not in ready:
                return False
            self._watching = not self._drain_saw_self_gone()
            return True
        # Polling (also inotify before the directory exists or after it was
        # removed): compare (inode, mtime) every POLL_INTERVAL_S.
        ready, _, _ = select.select([self._stop_r], [], [], min(timeout, POLL_INTERVAL_S))
        stamp = self._mtime()
        changed = stamp != self._stamp
        self._stamp = stamp
        if changed and stamp is not None and self._fd is not None:
            self._add_watch()
        return changed

    def _drain_saw_self_gone(self):
        """Reads pending events; True if the directory itself went away."""
        gone = False
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return gone
            pos = 0
            while pos + 16 <= len(data):
                _, mask, _, name_len = struct.unpack_from("iIII", data, pos)
                gone |= bool(mask & (IN_DELETE_SELF | IN_MOVE_SELF))
                pos += 16 + name_len

    def interrupt(self):
        """Wakes a wait() in another thread (for good: used to stop)."""
        os.write(self._stop_w, b"x")

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        os.close(self._stop_r)
        os.close(self._stop_w)


class Watch:
    """Calls on_change() from a daemon thread after each change of the
    directory, and at least every `period` s (a crashed server changes
    nothing there). stop() ends the thread."""

    def __init__(self, directory, on_change, use_inotify=True, period=1.0):
        self.watcher = DirWatcher(directory, use_inotify)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(on_change, period), name="citadel-discovery-watch", daemon=True)
        self._thread.start()

    def _loop(self, on_change, period):
        last = time.monotonic()
        try:
            while not self._stop.is_set():
                changed = self.watcher.wait(period)
                if self._stop.is_set():
                    return
                if changed or time.monotonic() - last >= period:
                    last = time.monotonic()
                    on_change()
        finally:
            self.watcher.close()

    def stop(self):
        self._stop.set()
        self.watcher.interrupt()
        self._thread.join(5)
