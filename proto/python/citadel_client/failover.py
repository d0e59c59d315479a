"""A client that finds the local server through the discovery directory,
falls back to a remote TCP address while there is none, and switches back
when one returns.

Choice: among live records (or the one named `name`), the best RPC
endpoint (shm > unix > tcp); none reachable -> `fallback`. A Watch of the
directory (and the current connection closing) triggers re-evaluation. A
call that fails on transport (ConnectionClosed, OSError) is retried once on
the new choice if it is idempotent (ops.Op.idempotent); others raise.
"""

import threading
import time

from . import discovery
from .client import BlockingCommands, Client
from .errors import CitadelError, ConnectionClosed
from .watch import Watch


class NoServer(ConnectionClosed):
    """No live local server and no fallback address (or none reachable)."""


class FailoverClient(BlockingCommands):
    def __init__(self, fallback=None, *, discovery_dir=None, name=None, watch=True, use_inotify=True, **client_options):
        self.directory = discovery_dir or discovery.default_dir()
        self.name = name
        self.fallback = fallback
        self.client_options = client_options
        # Counters: switches to the fallback after losing the local server,
        # switches back to a local server, idempotent calls retried.
        self.fallbacks = 0
        self.switch_backs = 0
        self.retries = 0
        self.current = None  # the Client in use
        self.local = False  # whether `current` is a local server
        self._lock = threading.RLock()
        self._closed = False
        self.refresh()
        self._watch = Watch(self.directory, self._refresh_quietly, use_inotify) if watch else None

    # --- choosing the server ---

    def _connect_first(self, addresses):
        for address in addresses:
            try:
                return Client(address, **self.client_options)
            except (OSError, CitadelError):
                continue  # a record of a server still starting, or a stale path
        return None

    def refresh(self):
        """Re-evaluates the choice now; returns the Client in use."""
        with self._lock:
            if self._closed:
                raise ConnectionClosed("client closed")
            healthy = self.current is not None and self.current._inflight.closed is None
            local = discovery.local_endpoints(self.directory, self.name)
            if healthy and self.local and str(self.current.address) in map(str, local):
                return self.current
            if healthy and not self.local and not local:
                return self.current
            client = self._connect_first(local)
            if client is not None:
                self._switch(client, local=True)
                return client
            if healthy and not self.local:
                return self.current
            if self.fallback is not None:
                client = self._connect_first([self.fallback])
                if client is not None:
                    self._switch(client, local=False)
                    return client
            self._switch(None, local=False)
            raise NoServer(f"no live server in {self.directory} and fallback {self.fallback!r} unreachable")

    def _switch(self, client, local):
        old, was_local = self.current, self.local
        if old is not None and client is not None:
            if was_local and not local:
                self.fallbacks += 1
            elif local and not was_local:
                self.switch_backs += 1
        self.current, self.local = client, local
        if old is not None and old is not client:
            # Let the old connection's calls finish before closing it.
            threading.Thread(target=_close_when_idle, args=(old,), daemon=True).start()

    def _refresh_quietly(self):
        try:
            self.refresh()
        except CitadelError:
            pass  # nothing reachable now; the next call or change retries

    def _client(self):
        with self._lock:
            client = self.current
        if client is None or client._inflight.closed is not None:
            client = self.refresh()
        return client

    # --- calls ---

    def _with_retry(self, idempotent, call):
        client = self._client()
        try:
            return call(client)
        except (ConnectionClosed, OSError):
            if not idempotent or self._closed:
                raise
        # A failed send may precede the reader seeing EOF: mark the
        # connection dead so refresh() does not pick it again.
        client.abort()
        self.retries += 1
        return call(self.refresh())

    def _run(self, op, deadline_ms, priority):
        return self._with_retry(op.idempotent, lambda c: c._run(op, deadline_ms, priority))

    def _run_batch(self, op_list, deadline_ms, priority):
        idempotent = all(op.idempotent for op in op_list)
        return self._with_retry(idempotent, lambda c: c._run_batch(op_list, deadline_ms, priority))

    def call_stream(self, *args, **kwargs):
        return self._client().call_stream(*args, **kwargs)

    def close(self):
        self._closed = True
        if self._watch is not None:
            self._watch.stop()
        with self._lock:
            if self.current is not None:
                self.current.close()
                self.current = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _close_when_idle(client, wait_s=10.0):
    end = time.monotonic() + wait_s
    while client.in_flight() and time.monotonic() < end:
        time.sleep(0.05)
    client.close()
