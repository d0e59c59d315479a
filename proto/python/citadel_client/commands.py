"""The client's methods, written once. Each builds an `ops.Op` and hands it
to `self._run(op, deadline_ms, priority)`, which the concrete class
defines: the blocking Client waits for the reply, the AsyncClient returns a
coroutine, a Batch collects the op, the futures view returns a Future.

Per call: `deadline_ms` is a budget in milliseconds from now (the server
refuses the request unexecuted once it has passed, and the client stops
waiting; None = no deadline), `priority` 0..255 (higher is more important).
"""

from . import ops


class Commands:
    def _run(self, op, deadline_ms, priority):  # pragma: no cover - abstract
        raise NotImplementedError

    def get(self, key, *, deadline_ms=None, priority=0):
        """The value (bytes), or None when the key is absent."""
        return self._run(ops.get(key), deadline_ms, priority)

    def set(self, key, value, ttl_ms=0, *, nx=False, xx=False, deadline_ms=None, priority=0):
        """True when stored; False when nx/xx did not hold."""
        return self._run(ops.set(key, value, ttl_ms, nx, xx), deadline_ms, priority)

    def delete(self, *keys, deadline_ms=None, priority=0):
        """How many of the keys existed (and are now gone)."""
        return self._run(ops.delete(*keys), deadline_ms, priority)

    def exists(self, *keys, deadline_ms=None, priority=0):
        """How many of the keys exist."""
        return self._run(ops.exists(*keys), deadline_ms, priority)

    def expire(self, key, ttl_ms, *, deadline_ms=None, priority=0):
        """Sets the key's TTL (0 removes it); False when there is no key."""
        return self._run(ops.expire(key, ttl_ms), deadline_ms, priority)

    def ttl(self, key, *, deadline_ms=None, priority=0):
        """Milliseconds left; -1 without TTL, -2 without key."""
        return self._run(ops.ttl(key), deadline_ms, priority)

    def incr(self, key, by=1, *, deadline_ms=None, priority=0):
        """The new value; CitadelError(NotInteger) for a non-number."""
        return self._run(ops.incr(key, by), deadline_ms, priority)

    def mget(self, *keys, deadline_ms=None, priority=0):
        """[bytes or None] in the keys' order."""
        return self._run(ops.mget(*keys), deadline_ms, priority)

    def mset(self, pairs, *, deadline_ms=None, priority=0):
        """Stores a dict or (key, value) pairs; True."""
        return self._run(ops.mset(pairs), deadline_ms, priority)

    def scan(self, cursor=0, match=None, count=0, *, deadline_ms=None, priority=0):
        """(next cursor, [keys]); cursor 0 means the scan is complete."""
        return self._run(ops.scan(cursor, match, count), deadline_ms, priority)

    def call(self, name, payload=b"", options=None, *, deadline_ms=None, priority=0):
        """A plugin's reply bytes, or a pipeline's final result (partials
        dropped; call_stream yields them)."""
        return self._run(ops.call(name, payload, options), deadline_ms, priority)

    def stats(self, section=None, *, deadline_ms=None, priority=0):
        """{name: int or str}."""
        return self._run(ops.stats(section), deadline_ms, priority)

    def hello(self, client_name=None, password=None, features=(), *, deadline_ms=None, priority=0):
        """A Welcome(version, server, features); AuthError on a wrong password."""
        return self._run(ops.hello(client_name, password, features), deadline_ms, priority)
