"""`python -m sim`: the `brokerlab` command, for when its script is not on PATH."""

import sys

from sim.cli import main

if __name__ == "__main__":  # not when a doctest run imports this module
    sys.exit(main())
