"""What outlives a process: the DuckDB warehouse, checkpoints and the token cache.

- `warehouse`: the DuckDB file every result lands in (imports no torch: the dashboard reads it).
- `checkpoint`: manifest + trained weights as safetensors, PEFT adapter folders.
- `cache`: memory-mapped frozen-encoder outputs shared by runs.
"""
