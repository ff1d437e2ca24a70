"""Warehouse -> DataFrames for the dashboard pages, one module per page family; no torch, no Streamlit.

Reads take the warehouse path, run in short read-only blocks and never write, migrate or create the file
(they raise `UserError`, e.g. `WarehouseBusy`, for the page to show); shaping is pure, DataFrame in,
DataFrame out.
- `readiness`: can the pages render (`warehouse_status -> Status`), and if not, why and what to run.
- `commands`: the `runner` commands a page shows (`command_for`, `reproduce_command`).
- `run_rows`: runs and their configurations (`load_runs`, `load_run_tables`, `filter_runs`, ...).
- `live`: matrix progress and who trains what now (`matrix_progress`, `running_now`).
- `standings`: summaries over seeds (`leaderboard`, `pareto`, `scaling`, `chance_levels`, ...).
- `sweeps`: swept options (`varying_options`, `sweep_grid`, `parallel_coordinates`, `top_configs`).
- `detail`: one run (`curves_long`, `confusion_grid`, `worst_videos`, `time_split`).
- `comparison`: runs against a baseline (`significance`, `class_deltas`, `confusion_delta`).
- `pretraining`: `runner pretrain` runs (`load_pretraining`, `pretrain_curves`, `pretrain_summary`).
"""
