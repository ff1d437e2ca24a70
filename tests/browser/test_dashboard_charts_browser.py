"""Charts whose size depends on their data, drawn by Streamlit in Chromium: a long legend must not crowd out
the plot (Streamlit fits a chart, legend included, into the height the chart asks for)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import needs_chromium, save_screenshot, serve

pytestmark = [pytest.mark.browser, needs_chromium]

QUESTIONS = 12
APP = f"""
import pandas as pd
import streamlit as st

from dashboard import charts

rows = [{{"question": f"Which data size for strategy number {{q}}?", "test_videos": n,
          "detectable_points": 300 / n ** 0.5, "current": n == 100}}
        for q in range({QUESTIONS}) for n in (25, 50, 100, 200, 400)]
st.title("Detectable differences")
st.altair_chart(charts.detectable_chart(pd.DataFrame(rows)), width="stretch")
"""
Y_AXIS = '[aria-roledescription="axis"][aria-label*="Y-axis"]'


def test_the_detectable_chart_keeps_its_plot_however_many_questions_it_lists(browser: Any, tmp_path: Path) -> None:
    script = tmp_path / "detectable.py"
    script.write_text(textwrap.dedent(APP))
    served = serve(["run", str(script), "--server.headless", "true"], log=tmp_path / "server.log",
                   ready="/_stcore/health", program=[sys.executable, "-m", "streamlit"], port_flag="--server.port")
    url = next(served)
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    try:
        page.goto(url)
        page.wait_for_selector(Y_AXIS, timeout=90_000)
        page.wait_for_timeout(500)
        save_screenshot(page.screenshot(full_page=True), "dashboard-detectable-many-questions")
        legend = page.locator(".role-legend-label text")
        assert legend.count() == QUESTIONS
        assert page.locator(Y_AXIS).bounding_box()["height"] >= 150  # the plot, not a sliver above the legend
    finally:
        page.close()
        served.close()
