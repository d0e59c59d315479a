"""The environment through which the server hands a plugin its rings
(see proto/src/handshake.rs for the format)."""

import os

from .ring import Consumer, Producer, Ring

ENV_RINGS = "CITADEL_PLUGIN_RINGS"
ENV_EVENTFDS = "CITADEL_PLUGIN_EVENTFDS"
ENV_MAX_ATTEMPTS = "CITADEL_PLUGIN_MAX_ATTEMPTS"
DEFAULT_MAX_ATTEMPTS = 3


class HandshakeError(Exception):
    pass


def _pairs(var, value):
    if not value.strip():
        raise HandshakeError(f"{var} is empty")
    out = []
    for pair in value.split(";"):
        if "," not in pair:
            raise HandshakeError(f"{var}: pair without ',' in {value!r}")
        a, b = pair.split(",", 1)
        out.append((a.strip(), b.strip()))
    return out


def _open(source):
    if source.startswith("fd:") and source[3:].isdigit():
        return Ring.open_fd(int(source[3:]))
    return Ring.open_path(source)


def parse(rings, eventfds, max_attempts=None):
    """Returns ([(request_source, reply_source, request_efd, reply_efd)], max_attempts)."""
    ring_pairs = _pairs(ENV_RINGS, rings)
    efd_pairs = _pairs(ENV_EVENTFDS, eventfds)
    if len(ring_pairs) != len(efd_pairs):
        raise HandshakeError(f"{ENV_RINGS} has {len(ring_pairs)} pairs but {ENV_EVENTFDS} has {len(efd_pairs)}")
    specs = []
    for (req, rep), (a, b) in zip(ring_pairs, efd_pairs):
        if not (a.isdigit() and b.isdigit()):
            raise HandshakeError(f"{ENV_EVENTFDS}: not descriptor numbers: {a!r}, {b!r}")
        specs.append((req, rep, int(a), int(b)))
    attempts = DEFAULT_MAX_ATTEMPTS
    if max_attempts is not None:
        if not max_attempts.strip().isdigit() or not 0 < int(max_attempts) < 65536:
            raise HandshakeError(f"{ENV_MAX_ATTEMPTS}: {max_attempts!r} is not in 1..65535")
        attempts = int(max_attempts)
    return specs, attempts


def attach_from_env(environ=os.environ):
    """Attaches to every ring pair: [(requests Consumer, replies Producer)], max_attempts."""
    try:
        specs, attempts = parse(environ[ENV_RINGS], environ[ENV_EVENTFDS], environ.get(ENV_MAX_ATTEMPTS))
    except KeyError as e:
        raise HandshakeError(f"{e.args[0]} is not set (is this process started by the Citadel server?)") from None
    ends = []
    for req, rep, req_efd, rep_efd in specs:
        ends.append((Consumer(_open(req), req_efd), Producer(_open(rep), rep_efd)))
    return ends, attempts
