"""Write a Citadel plugin in Python, no compiled extension needed::

    from citadel_plugin import serve
    serve(lambda req: req.payload.upper())

The server starts the plugin with its shared-memory rings in the environment
(CITADEL_PLUGIN_RINGS, CITADEL_PLUGIN_EVENTFDS, CITADEL_PLUGIN_MAX_ATTEMPTS).
Requests are delivered at least once: after a crash the restarted plugin gets
every request it had not committed again (``req.attempt`` counts deliveries),
and one delivered more than max_attempts times (default 3) is skipped and
reported to the server as abandoned. SIGTERM finishes the batch in hand,
commits it, and makes ``serve`` return 0. Requires Linux on x86-64 and
Python >= 3.10 (os.eventfd).
"""

from .handshake import HandshakeError, attach_from_env
from .ring import Consumer, Producer, Ring, RingError, RingFull, TooLarge
from .runtime import Reply, Request, serve, serve_batch

__all__ = [
    "serve",
    "serve_batch",
    "Request",
    "Reply",
    "Ring",
    "Consumer",
    "Producer",
    "RingError",
    "RingFull",
    "TooLarge",
    "HandshakeError",
    "attach_from_env",
]
