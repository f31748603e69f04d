"""``python -m fastbus``: print the version and which core is active, and why."""

from __future__ import annotations

import sys


def main() -> int:
    import fastbus
    from fastbus._core import WHY_NOT_COMPILED

    print(f"fastbus {fastbus.__version__} on Python {sys.version.split()[0]}")
    if fastbus.COMPILED:
        print("core: compiled (fastbus._core_c)")
    else:
        print(f"core: pure Python (fastbus._core_py), because {WHY_NOT_COMPILED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
