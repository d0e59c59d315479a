"""Example Citadel plugin: answers every request with its payload upper-cased."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from citadel_plugin import serve  # noqa: E402

if __name__ == "__main__":
    sys.exit(serve(lambda req: req.payload.upper()))
