"""Warehouse -> DataFrames for the dashboard pages, one module per page family; no torch, no Streamlit, so that
each is unit-tested as plain functions. Reads take the warehouse path, run in short read-only blocks and never
write, migrate or create the file (they raise `UserError`, e.g. `WarehouseBusy`, for the page to show);
shaping is pure, DataFrame in, DataFrame out.
"""
