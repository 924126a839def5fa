"""`python -m sim.cli`: the `brokerlab` command."""

import sys

from sim.cli import main

if __name__ == "__main__":  # not when a doctest run imports this module
    sys.exit(main())
