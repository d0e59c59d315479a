"""Test plugin: sleeps `payload` milliseconds, then answers the payload
(a slow call to check that replies on one connection are not held back)."""

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
sys.path.insert(0, os.path.join(ROOT, "plugins", "python"))

from citadel_plugin import serve  # noqa: E402


def handle(req):
    time.sleep(int(req.payload or b"0") / 1000)
    return req.payload


if __name__ == "__main__":
    sys.exit(serve(handle))
