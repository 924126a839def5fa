"""Executable reference model (see docs/spec.md)."""
