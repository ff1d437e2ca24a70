"""The vjepa-lab dashboard: `streamlit run dashboard/app.py [-- --warehouse PATH]` (or `runner dashboard`).

Reads the DuckDB warehouse (`--warehouse`, else VJEPA_WAREHOUSE, else warehouse/vjepa.duckdb) and
never writes it. This file only lays out the navigation and the sidebar; each page is a file in
`dashboard/pages/` that renders frames from `dashboard.queries.*` with charts from `dashboard.charts`.
"""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.queries import readiness

st.set_page_config(page_title="vjepa-lab dashboard", page_icon=":material/movie:", layout="wide")

PAGES = {
    "Results": [
        st.Page("pages/overview.py", title="Overview", icon=":material/leaderboard:", default=True),
        st.Page("pages/params.py", title="Accuracy vs parameters", icon=":material/scatter_plot:"),
        st.Page("pages/data_scaling.py", title="Data scaling", icon=":material/trending_up:"),
        st.Page("pages/frames.py", title="Frames per clip", icon=":material/movie:"),
        st.Page("pages/sweeps.py", title="Sweeps", icon=":material/grid_on:"),
    ],
    "Features": [
        st.Page("pages/embeddings.py", title="Embeddings", icon=":material/bubble_chart:"),
    ],
    "Runs": [
        st.Page("pages/run_detail.py", title="Run detail", icon=":material/search:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("pages/live.py", title="Live", icon=":material/monitoring:"),
    ],
    "Pretraining": [
        st.Page("pages/pretraining.py", title="Pretraining", icon=":material/school:"),
    ],
}

page = st.navigation(PAGES)
path = ui.warehouse_path()
st.sidebar.caption(f"warehouse: `{path}`")
if st.sidebar.button("Refresh", icon=":material/refresh:"):
    st.cache_data.clear()
# Filters only make sense over runs; the pages explain a missing or empty warehouse themselves.
if readiness.warehouse_status(path).ok:
    ui.sidebar_filters(ui.runs())
page.run()
