"""`python -m sim.port`: the reference broker behind the port protocol (docs/port-protocol.md)."""

import sys

from sim.port._serve import main

sys.exit(main())
