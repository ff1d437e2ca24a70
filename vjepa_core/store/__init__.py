"""What outlives a process: the DuckDB warehouse, checkpoints and the token cache.

- `warehouse`: the DuckDB file every result lands in (imports no torch: the dashboard reads it); its
  parts: `schema` (tables, version, migrations), `locking` (short connections that wait their turn),
  `rows` (Python rows <-> typed Arrow tables).
- `claims`: which runner process trains which run; `liveness`: whether a process (host, pid, start
  time) still runs, the one rule claims, the temporary-file sweep and the dashboard share.
- `atomic`: files and folders that land whole or not at all.
- `checkpoint`: manifest + trained weights as safetensors, PEFT adapter folders.
- `cache`: memory-mapped frozen-encoder outputs shared by runs (`TokenCache.fetch`).
"""
