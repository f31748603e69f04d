"""``python -m fastbus.bench``: see :mod:`fastbus.bench`."""

import sys

from fastbus.bench import main

if __name__ == "__main__":
    sys.exit(main())
