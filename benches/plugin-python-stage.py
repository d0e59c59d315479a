#!/usr/bin/env python3
"""A Python pipeline stage's serve loop alone, without a server: records per
second (and, with --profile, a cProfile of the loop).

Builds the rings a middle stage gets in the PY_MIDDLE pipeline of
benches/plugin-upgrade.sh (split x INSTANCES -> one Python stage -> upper x
INSTANCES, THREADS server threads): with --spare, every plugin has a spare
slot as on main (the upstream spare's pairs stay empty, the downstream
spare's input ring is closed); without it, the layout before spare slots.
Every input pair is filled with pipeline calls (a Frame then its End), the
stage's ``serve`` upper-cases them into the output rings, and the handler
stops the loop (SIGTERM to itself) after the last record.

Usage: benches/plugin-python-stage.py [--pkg DIR] [--spare] [--records N]
       [--profile] [--threads T] [--instances I]
  --pkg DIR  the directory holding the citadel_plugin package to measure
             (default plugins/python), e.g. an older checkout's, for an A/B.
"""

import argparse
import os
import signal
import sys
import tempfile
import time

p = argparse.ArgumentParser()
p.add_argument("--pkg", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "plugins", "python"))
p.add_argument("--spare", action="store_true")
p.add_argument("--records", type=int, default=40000)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--instances", type=int, default=2)
p.add_argument("--profile", action="store_true")
args = p.parse_args()
sys.path.insert(0, os.path.abspath(args.pkg))

from citadel_plugin import ring as r  # noqa: E402
from citadel_plugin import serve  # noqa: E402

FRAME, END, VERSION = 2, 4, 1
CLOSED = getattr(r, "OFF_CLOSED", None)
spare = 1 if args.spare else 0
upstream = args.instances + spare  # pairs per thread of the one Python instance
downstream = args.instances + spare
tmp = tempfile.mkdtemp(prefix="citadel-pystage-")
rings, eventfds, outputs, inputs = [], [], [], []
per_pair = args.records // (args.threads * args.instances)
for t in range(args.threads):
    for u in range(upstream):
        req, rep = (os.path.join(tmp, f"{t}-{u}-{x}") for x in ("req", "rep"))
        ring = r.Ring.create(1 << 22, req)
        r.Ring.create(1 << 16, rep)
        efds = [os.eventfd(0, os.EFD_NONBLOCK) for _ in range(2)]
        for fd in efds:
            os.set_inheritable(fd, True)
        rings.append(f"{req},{rep}")
        eventfds.append(f"{efds[0]},{efds[1]}")
        if u < args.instances:  # the upstream spare is parked: nothing comes from it
            inputs.append(r.Producer(ring, efds[0]))
        outs = []
        for d in range(downstream):
            path = os.path.join(tmp, f"{t}-{u}-out{d}")
            out = r.Ring.create(1 << 22, path)
            if d == args.instances and CLOSED is not None:
                out._i[CLOSED // 4] = 1  # the downstream spare takes no call
            outs.append(f"{path}@{os.eventfd(0, os.EFD_NONBLOCK)}")
        outputs.append("|".join(outs))

total = 0
for n, prod in enumerate(inputs):
    for i in range(per_pair // 2):
        id_ = n * per_pair + i
        prod.send(id_, bytes([FRAME, VERSION]) + b"line %d" % id_, r.KIND_REQUEST)
        prod.send(id_, bytes([END, VERSION]), r.KIND_REQUEST)
        total += 2

os.environ.update(
    CITADEL_PLUGIN_RINGS=";".join(rings),
    CITADEL_PLUGIN_EVENTFDS=";".join(eventfds),
    CITADEL_PLUGIN_OUTPUTS=";".join(outputs),
)
done = 0


def upper(req):
    global done
    done += 1
    if done == total:
        os.kill(os.getpid(), signal.SIGTERM)
    return req.payload.upper()


start = time.perf_counter()
if args.profile:
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.runcall(serve, upper)
    pstats.Stats(prof).sort_stats("tottime").print_stats(14)
else:
    serve(upper)
secs = time.perf_counter() - start
pairs = args.threads * upstream
print(f"pairs={pairs} outputs_per_pair={downstream} records={done} secs={secs:.3f} records_per_s={done / secs:.0f}")
for f in os.listdir(tmp):
    os.unlink(os.path.join(tmp, f))
os.rmdir(tmp)
