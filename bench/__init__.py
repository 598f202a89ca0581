"""Benchmarks: scripts that print memrelay's figures next to a baseline measured in the same run.
Not installed; they may import anything of memrelay."""
