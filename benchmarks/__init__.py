"""Benchmarks of vjepa-lab; `bench_matrix` is what `runner bench` runs."""
