import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# The tests' helpers (fakeserver, citadel) live beside them; the package
# is used installed (pip install ./proto/python), else from the source tree.
sys.path.insert(0, HERE)
try:
    import citadel_client  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(HERE))
