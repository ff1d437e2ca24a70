"""The real dashboard in a real browser: `runner dashboard` serves it on 127.0.0.1, Debian's headless
Chromium (driven by Playwright, never downloaded by it) opens every main page.

Per page: no Streamlit exception box, the expected number of charts, each an SVG with drawn marks,
and the first one not blank in pixels. Screenshots go to test-artifacts/dashboard-<page>.png; the pages the
dashboard guide shows also to docs/images/ under `make screenshots` (the main area only: the sidebar names
the test's own warehouse file).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import ARTIFACTS, docs_image, inked_share, needs_chromium, save_screenshot, serve
from tests.support import TrainedRuns

# url path -> charts the page draws over `dashboard_runs`
PAGES = {"": 3, "params": 2, "data_scaling": 3, "frames": 2, "sweeps": 3, "embeddings": 1, "run_detail": 4,
         "compare": 3, "live": 0}
IN_DOCS = {"overview", "data_scaling", "sweeps", "embeddings", "compare", "live"}

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture(scope="module")
def served(dashboard_runs: TrainedRuns, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`runner dashboard --no-browser` on a free port; stopped (its process group) afterwards."""
    log = tmp_path_factory.mktemp("dashboard-server") / "server.log"
    yield from serve(["dashboard", "--no-browser", "--warehouse", str(dashboard_runs.warehouse)], log=log,
                     ready="/_stcore/health")


MARKS_JS = """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].map(
    chart => chart.querySelectorAll('svg .role-mark > *').length)"""


# The heights in pixels of the confusion matrix's cells (the chart with that legend; Vega draws rects as paths).
HEAT_CELLS_JS = """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
    .filter(chart => chart.textContent.includes('share of true class'))
    .flatMap(chart => [...chart.querySelectorAll('svg g.mark-rect.role-mark path')])
    .map(cell => cell.getBoundingClientRect().height)"""


def test_pages_render_in_chromium(served: str, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    try:
        for path, charts in PAGES.items():
            name = path or "overview"
            page.goto(f"{served}/{path}")
            page.wait_for_selector('[data-testid="stMain"] h1', timeout=90_000)
            if charts:
                page.wait_for_function(f"() => ({MARKS_JS})().filter(n => n > 0).length >= {charts}",
                                       timeout=90_000)
            else:
                page.wait_for_selector('[data-testid="stProgress"]', timeout=90_000)
            page.wait_for_timeout(500)  # let the last chart finish its transition before the screenshot
            save_screenshot(page.screenshot(), f"dashboard-{name}")
            if name in IN_DOCS:
                docs_image(page.locator('[data-testid="stMain"]').screenshot(), f"dashboard-{name}")
            assert page.locator('[data-testid="stException"]').count() == 0, name
            marks = page.evaluate(MARKS_JS)
            assert len(marks) == charts and all(n > 0 for n in marks), (name, marks)
            if charts:
                chart = page.locator('[data-testid="stVegaLiteChart"]').first
                assert inked_share(chart.screenshot()) > 0.01, name
            if not path:  # the Overview leads with the verdict's table, its chart and the sentences folded
                assert page.locator('[data-testid="stDataFrame"]').count() == 3
                assert page.get_by_text("The verdict in sentences").count() == 1
            if path == "run_detail":  # the confusion matrix's cells, not squeezed by the labels under them
                cells = page.evaluate(HEAT_CELLS_JS)
                assert len(cells) == 36 and min(cells) >= 40, cells
    finally:
        page.close()
    assert all((ARTIFACTS / f"dashboard-{path or 'overview'}.png").stat().st_size > 10_000 for path in PAGES)


def test_a_link_to_a_page_opens_it_inside_the_dashboard(dashboard_runs: TrainedRuns, browser: Any,
                                                        tmp_path: Path) -> None:
    """A fresh server whose first visitor opens a page's address (a bookmark, a link to one run) shows that page
    with the dashboard's navigation, not the page's file alone."""
    run_id = dashboard_runs.run_ids[0]
    served = serve(["dashboard", "--no-browser", "--warehouse", str(dashboard_runs.warehouse)],
                   log=tmp_path / "server.log", ready="/_stcore/health")
    url = next(served)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{url}/run_detail?run={run_id}")
        page.wait_for_selector('[data-testid="stMain"] h1', timeout=90_000)
        page.get_by_text(run_id).first.wait_for(timeout=90_000)
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
        assert "Accuracy vs parameters" in nav and "Run detail" in nav, nav
        assert page.locator('[data-testid="stMain"] h1').first.inner_text() == "Run detail"
    finally:
        page.close()
        served.close()
