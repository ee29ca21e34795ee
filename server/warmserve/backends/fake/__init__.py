"""The fake engine: deterministic output, delays and faults, for tests that need no real model."""
