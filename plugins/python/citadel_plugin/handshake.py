"""The environment through which the server hands a plugin its rings
(see proto/src/handshake.rs for the format)."""

import os

from .ring import Consumer, Producer, Ring

ENV_RINGS = "CITADEL_PLUGIN_RINGS"
ENV_EVENTFDS = "CITADEL_PLUGIN_EVENTFDS"
ENV_MAX_ATTEMPTS = "CITADEL_PLUGIN_MAX_ATTEMPTS"
ENV_OUTPUTS = "CITADEL_PLUGIN_OUTPUTS"
ENV_SERVER_PID = "CITADEL_PLUGIN_SERVER_PID"


def server_gone(start_parent):
    """Whether the server that started this plugin is gone: the parent
    changed since the start (the server died and the plugin was re-parented),
    or the server named by CITADEL_PLUGIN_SERVER_PID runs no more (it died
    while it spawned the plugin, whose first parent was then already init).
    A plugin started through a wrapper has that as its parent."""
    if os.getppid() != start_parent:
        return True
    try:
        pid = int(os.environ[ENV_SERVER_PID])
    except (KeyError, ValueError):
        return False
    return not os.path.exists(f"/proc/{pid}")
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


def parse_outputs(value, pairs):
    """A pipeline stage's output rings per pair: [[(ring_source, eventfd)]]."""
    lists = value.split(";")
    if len(lists) != pairs:
        raise HandshakeError(f"{ENV_OUTPUTS} has {len(lists)} lists for {pairs} pairs")
    out = []
    for item in lists:
        outputs = []
        for o in filter(None, (x.strip() for x in item.split("|"))):
            ring, sep, efd = o.rpartition("@")
            if not sep or not efd.isdigit():
                raise HandshakeError(f"{ENV_OUTPUTS}: {o!r} is not RING@EFD")
            outputs.append((ring, int(efd)))
        out.append(outputs)
    return out


def attach_from_env(environ=os.environ):
    """Attaches to every ring pair: [(requests Consumer, replies Producer,
    [output Producer])], max_attempts. A pipeline stage with a next stage has
    output rings (the next stage's request rings)."""
    try:
        specs, attempts = parse(environ[ENV_RINGS], environ[ENV_EVENTFDS], environ.get(ENV_MAX_ATTEMPTS))
    except KeyError as e:
        raise HandshakeError(f"{e.args[0]} is not set (is this process started by the Citadel server?)") from None
    outputs = [[] for _ in specs]
    if environ.get(ENV_OUTPUTS) is not None:
        outputs = parse_outputs(environ[ENV_OUTPUTS], len(specs))
    ends = []
    for (req, rep, req_efd, rep_efd), outs in zip(specs, outputs):
        producers = [Producer(_open(ring), efd) for ring, efd in outs]
        ends.append((Consumer(_open(req), req_efd), Producer(_open(rep), rep_efd), producers))
    return ends, attempts
