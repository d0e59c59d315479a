"""A client for a Citadel cluster (cluster-enabled yes): each request goes
to the node that owns its key's slot, learned from the servers' Moved
errors (the slot and the owner's RPC address).

One Client per node, opened as needed. A keyed request goes to the node
its slot was last seen on (at first: the seed), a Moved answer is
remembered for that slot and the request sent there once more (a second
Moved is raised: the cluster is changing). Keyless requests (scan, stats,
calls) go to the seed node. A batch is split by node (one sub-batch each,
the outcomes merged back in order); its operations answered Moved are
sent once more to their new owner (a second Moved is their outcome)."""

import threading

from .client import BlockingCommands, Client
from .errors import CitadelError, Moved
from .ops import to_bytes

SLOTS = 16384


def _crc16(data):
    """CRC16-CCITT (XModem), Redis Cluster's key hash."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key):
    """Redis Cluster's slot of `key` (its {hash tag} when it has one)."""
    data = to_bytes(key)
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    return _crc16(data) % SLOTS


class ClusterClient(BlockingCommands):
    """ClusterClient(["tcp://127.0.0.1:8001", ...]): connects to the first
    seed that answers; `client_options` are passed to every node's Client."""

    def __init__(self, seeds, **client_options):
        self.client_options = client_options
        self.redirects = 0  # Moved answers followed so far
        self._owners = {}  # slot -> RPC address last learned
        self._nodes = {}  # address -> Client
        self._lock = threading.Lock()
        last = CitadelError(None, "no seed address given")
        for seed in seeds:
            try:
                self._nodes[seed] = Client(seed, **client_options)
                self.home = seed
                return
            except (OSError, CitadelError) as e:
                last = e
        raise last

    def node(self, address):
        """The Client of the node at `address`, (re)connected if needed."""
        with self._lock:
            client = self._nodes.get(address)
            if client is None or client._inflight.closed is not None:
                client = self._nodes[address] = Client(address, **self.client_options)
            return client

    def _owner(self, key):
        return self.home if key is None else self._owners.get(key_slot(key), self.home)

    def _run(self, op, deadline_ms, priority):
        address = self._owner(op.key)
        try:
            return self.node(address)._run(op, deadline_ms, priority)
        except Moved as moved:
            if not self._learn(moved):
                raise
            return self.node(moved.address)._run(op, deadline_ms, priority)

    def _learn(self, moved):
        """Remembers the owner a Moved names; False when it names none."""
        if not moved.address:
            return False
        self._owners[moved.slot] = moved.address
        self.redirects += 1
        return True

    def _run_batch(self, op_list, deadline_ms, priority):
        outcomes = [None] * len(op_list)
        groups = {}
        for i, op in enumerate(op_list):
            groups.setdefault(self._owner(op.key), []).append(i)
        for follow in (True, False):
            moved = {}
            for address, indices in groups.items():
                sub = [op_list[i] for i in indices]
                answers = self.node(address)._run_batch(sub, deadline_ms, priority)
                for i, answer in zip(indices, answers):
                    if follow and isinstance(answer, Moved) and self._learn(answer):
                        moved.setdefault(answer.address, []).append(i)
                    else:
                        outcomes[i] = answer
            groups = moved
        return outcomes

    def close(self):
        with self._lock:
            for client in self._nodes.values():
                client.close()
            self._nodes.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
