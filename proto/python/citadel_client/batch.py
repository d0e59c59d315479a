"""A batch: operations queued with the usual methods, sent as one Batch
frame, answered by one BatchReply with an outcome per operation."""

from .commands import Commands


class Batch(Commands):
    def __init__(self, execute):
        self._execute = execute
        self.ops = []

    def _run(self, op, deadline_ms, priority):
        # Per-op deadlines do not exist on the wire: the batch has one.
        self.ops.append(op)
        return self

    def execute(self, *, deadline_ms=None, priority=0):
        """The outcomes in order (for AsyncClient: a coroutine of them)."""
        op_list, self.ops = self.ops, []
        return self._execute(op_list, deadline_ms, priority)

    def __len__(self):
        return len(self.ops)
