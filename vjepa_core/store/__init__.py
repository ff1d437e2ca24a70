"""What outlives a process: the DuckDB warehouse every result lands in (and the claims that say who trains what),
checkpoints, and the cache of frozen-encoder outputs. Every file here is written atomically
(`vjepa_core.store.atomic`); the warehouse and the claims import no torch, so that the dashboard stays light.
"""
