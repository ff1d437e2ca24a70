"""Figures that print, run from a checkout as `python -m benchmarks.<name>` (not installed with the package).

`runner bench`'s own workloads ship with the CLI (`runner/bench/`); these
need a checkout's harness: tmpfs mounts, SIGKILLs, concurrent runners, rebuilding the shipped preset.
"""
