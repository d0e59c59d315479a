"""Runs every test_* function in this folder without pytest.
Prints `N passed, M failed` and exits non-zero on failure."""

import importlib
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main():
    passed = failed = 0
    for name in sorted(os.listdir(HERE)):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        module = importlib.import_module(name[:-3])
        for attr in sorted(dir(module)):
            fn = getattr(module, attr)
            if attr.startswith("test_") and callable(fn):
                try:
                    fn()
                    passed += 1
                    print(f"ok     {name[:-3]}.{attr}")
                except Exception:
                    failed += 1
                    print(f"FAILED {name[:-3]}.{attr}")
                    traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
