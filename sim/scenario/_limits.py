"""Caps on what a scenario may ask for (docs/scenario-format.md, "Limits").

Two reasons for each: every number a run derives from the scenario must stay finite (a deadline
`now + timeout`, a service time divided by a speed and a slow fault's factor, the hard stop
`10 * until + 1000`, a Poisson gap `-ln(u) / rate`), and whatever a run builds before its first
event (actors, closed-loop users, Zipf tables) must fit in memory: a typo of a few digits is
refused with a message naming the key and the cap, not an overflow, a hang or a swap storm.
"""

from __future__ import annotations

# Ports keep seeds in 64 bits (docs/port-protocol.md, docs/spec.md 1.2).
MAX_SEED = 2**64 - 1

# Every time, duration, delay, timeout, mean and deadline of a scenario, in absolute value.
# Doubles near 1e12 are still spaced about 1e-4 apart, and the largest service time a run can
# draw stays far from overflow: a log-normal sample is at most e^71 times its mean (sigma <= 10,
# and random.normalvariate's |z| <= 12.2), divided by a speed and a slow factor of 1e-9 each:
# below 1e61.
MAX_TIME = 1e12

# Poisson arrival rates: a mean gap of at most MAX_TIME.
MIN_RATE = 1e-12

# Pool member speeds and slow faults' factors: a service time divided by both stays finite.
MIN_SPEED = 1e-9

# A log-normal's shape. Beyond it nearly every sample rounds to 0 and the mean is carried by
# draws too rare to happen in a run; sigma**2 / 2 also stays far from overflow.
MAX_SIGMA = 10.0

# What a run builds at t = 0. About 7 kB per actor: 50,000 actors take about 0.4 GB and two
# seconds to register; 100,000 closed-loop users about 0.15 GB; a Zipf table of n keys 42 bytes
# a key (10,000,000 keys: 0.4 GB).
MAX_POOL_SIZE = 10_000
MAX_ACTORS = 50_000  # pool members, actors and clients together
MAX_CONCURRENCY = 10_000  # closed-loop users of one client
MAX_USERS = 100_000  # closed-loop users of all clients together
ZIPF_MAX_N = 10_000_000  # keys of one Zipf sampler, and of all of them together
