"""jobtrack's benchmarks: each operation against the bare baseline of its medium."""
