"""The vjepa-lab dashboard: `streamlit run dashboard/app.py [-- --warehouse PATH]` (or `runner dashboard`).

Reads the DuckDB warehouse (`--warehouse`, else VJEPA_WAREHOUSE, else warehouse/vjepa.duckdb) and
never writes it. This file only lays out the navigation and the sidebar; each page is a file in
`dashboard/views/` that renders frames from `dashboard.queries.*` with charts from `dashboard.charts`. Not
`pages/`: Streamlit finds a folder of that name by itself, and a fresh server whose first visitor opens a page's
address (a bookmark, a shared link) ran that file alone, without this navigation, layout or sidebar.
"""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.queries import readiness

st.set_page_config(page_title="vjepa-lab dashboard", page_icon=":material/movie:", layout="wide")

PAGES = {
    "Results": [
        st.Page("views/overview.py", title="Overview", icon=":material/leaderboard:", default=True),
        st.Page("views/params.py", title="Accuracy vs parameters", icon=":material/scatter_plot:"),
        st.Page("views/data_scaling.py", title="Data scaling", icon=":material/trending_up:"),
        st.Page("views/frames.py", title="Frames per clip", icon=":material/movie:"),
        st.Page("views/sweeps.py", title="Sweeps", icon=":material/grid_on:"),
    ],
    "Features": [
        st.Page("views/embeddings.py", title="Embeddings", icon=":material/bubble_chart:"),
    ],
    "Runs": [
        st.Page("views/run_detail.py", title="Run detail", icon=":material/search:"),
        st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("views/live.py", title="Live", icon=":material/monitoring:"),
    ],
    "Pretraining": [
        st.Page("views/pretraining.py", title="Pretraining", icon=":material/school:"),
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
