"""A pipeline stage's output rings and which one each call goes to, as in
the Rust SDK (plugins/sdk/src/engine/outputs.rs): a call opens in one of
the rings the host keeps open (spread by id), and all its records go there
until the one that ends it, even if that ring closes meanwhile, so the
next instance sees them in order. The route is kept in the ring's
open-call table too: a stage restarted in the middle of a call sends the
rest of it where it began."""

import logging
from collections import deque

from .ring import _CLOSED

MESSAGE_FRAME, MESSAGE_RESULT = 2, 3
PIPELINE_VERSION = 1

log = logging.getLogger("citadel_plugin")


def continues_call(payload):
    """A pipeline frame or result: more records of its call follow. An End,
    a first stage's Call or anything else ends the call here."""
    return len(payload) >= 2 and payload[0] in (MESSAGE_FRAME, MESSAGE_RESULT) and payload[1] == PIPELINE_VERSION


class Outputs:
    def __init__(self, rings):
        self.rings = rings
        # Each ring's u32 words: the gate's closed flag is read on every new
        # call, without a method call per ring.
        self._words = [p.ring._i for p in rings]
        self._open = {}
        self._order = deque()
        # Calls a previous process of this stage held open keep their ring.
        for n, producer in enumerate(rings):
            for id in producer.open_call_ids():
                self._open[id] = n
                self._order.append(id)
        if self._open:
            log.info("continuing %d calls a previous process of this stage held open", len(self._open))

    def __bool__(self):
        return bool(self.rings)

    def route(self, id):
        """The ring index call ``id`` goes to, or None while every ring is closed."""
        n = self._open.get(id)
        if n is not None:
            return n
        for _ in range(len(self.rings)):
            open_rings = [i for i, w in enumerate(self._words) if w[_CLOSED] == 0]
            if not open_rings:
                return None
            pick = open_rings[id % len(open_rings)]
            opened = self.rings[pick].open_call(id)
            if opened == "full":
                self._evict_oldest(pick)
                opened = self.rings[pick].open_call(id)
            if opened == "opened":
                self._open[id] = pick
                self._order.append(id)
                if len(self._order) > 2 * len(self._open) + 64:
                    self._order = deque(i for i in self._order if i in self._open)
                return pick
        return None

    def _evict_oldest(self, ring):
        """Ends the oldest call open in ``ring``, whose table is full (a call
        whose end never comes: the stage before answered the server)."""
        oldest = next((i for i in self._order if self._open.get(i) == ring), None)
        if oldest is not None:
            log.warning("the next stage's open-call table is full: ending the oldest call %d", oldest)
            self.end(oldest)

    def end(self, id):
        n = self._open.pop(id, None)
        if n is not None:
            self.rings[n].end_call(id)
        if not self._open:
            self._order.clear()

    def notify(self, indexes):
        """Wakes the consumers of these rings (those written to) if parked."""
        for n in indexes:
            self.rings[n].notify()
