"""Typed exceptions. Every server error carries an ErrorCode (rpc.fbs);
the subclasses name the ones callers commonly handle on their own."""

from .generated.rpc_generated import ErrorCode

ERROR_NAMES = {v: k for k, v in vars(ErrorCode).items() if not k.startswith("_")}


class CitadelError(Exception):
    """An error reply from the server, or a client-side failure with the code
    the server would have used. ``code`` is an ErrorCode value (or None for
    failures that have no server equivalent, e.g. a closed connection)."""

    def __init__(self, code, message=""):
        super().__init__(f"{ERROR_NAMES.get(code, code)}: {message}" if code is not None else message)
        self.code = code
        self.message = message

    def __eq__(self, other):
        return type(other) is type(self) and (other.code, other.message) == (self.code, self.message)

    def __hash__(self):
        return hash((type(self), self.code, self.message))


class DeadlineExceeded(CitadelError):
    """The request's deadline passed (at the server, or while waiting)."""


class AuthError(CitadelError):
    """Wrong password, or a request before HELLO on a server with requirepass."""


class TooLarge(CitadelError):
    """The frame exceeds the server's limit or the shared-memory ring."""


class PluginError(CitadelError):
    """A plugin or pipeline call failed (unknown name, plugin error, timeout)."""


class Moved(CitadelError):
    """Cluster mode: another node serves the key's slot. ``slot`` and
    ``address`` (that node's RPC host:port; empty when it has none) say
    where to send the request; ClusterClient follows it."""

    def __init__(self, code, message="", slot=0, address=""):
        super().__init__(code, message)
        self.slot = slot
        self.address = address


class ConnectionClosed(CitadelError):
    """The connection ended before the reply came; the request may or may not
    have been executed."""

    def __init__(self, message="connection closed"):
        super().__init__(None, message)


_BY_CODE = {
    ErrorCode.Deadline: DeadlineExceeded,
    ErrorCode.Auth: AuthError,
    ErrorCode.TooLarge: TooLarge,
    ErrorCode.Plugin: PluginError,
}


def error_for(code, message, slot=0, address=""):
    """The exception for an Error{code, message, slot, address} reply."""
    if code == ErrorCode.Moved:
        return Moved(code, message, slot, address)
    return _BY_CODE.get(code, CitadelError)(code, message)
