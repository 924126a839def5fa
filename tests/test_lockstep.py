"""Spec sections 2 to 7: the broker and the reference model, driven in lockstep."""

from __future__ import annotations

from sim.checking.lockstep import LockstepMachine

TestLockstep = LockstepMachine.TestCase
