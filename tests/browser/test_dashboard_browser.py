"""The real dashboard in a real browser: `runner dashboard` serves it on 127.0.0.1, Debian's headless
Chromium (driven by Playwright, never downloaded by it) opens every main page.

Per page: no Streamlit exception box, the expected number of charts, each an SVG with drawn marks,
and the first one not blank in pixels. Screenshots go to test-artifacts/dashboard-<page>.png.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support import TrainedRuns

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
# url path -> charts the page draws over `dashboard_runs`
PAGES = {"": 3, "params": 2, "data_scaling": 3, "frames": 2, "sweeps": 3, "embeddings": 1, "run_detail": 4,
         "compare": 3, "live": 0}

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(),
                                 reason="needs Debian's chromium (scripts/install-test-tools.sh)")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"dashboard server exited with {server.returncode}"
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"dashboard at {url} did not come up in {timeout:.0f} s")


@pytest.fixture(scope="module")
def served(dashboard_runs: TrainedRuns, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`runner dashboard --no-browser` on a free port; stopped (its process group) afterwards."""
    port = _free_port()
    log = tmp_path_factory.mktemp("dashboard-server") / "server.log"
    env = {**os.environ, "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    env.pop("VJEPA_WAREHOUSE", None)
    command = [sys.executable, "-c", "from runner.cli import main; main()", "dashboard", "--no-browser",
               "--port", str(port), "--warehouse", str(dashboard_runs.warehouse)]
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


MARKS_JS = """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].map(
    chart => chart.querySelectorAll('svg .role-mark > *').length)"""


def _inked_share(png: bytes) -> float:
    """Share of pixels that differ from the corner (background) colour."""
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    distance = np.abs(pixels - pixels[0, 0]).sum(axis=-1)
    return float((distance > 30).mean())


def test_pages_render_in_chromium(served: str) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
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
                page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"))
                assert page.locator('[data-testid="stException"]').count() == 0, name
                marks = page.evaluate(MARKS_JS)
                assert len(marks) == charts and all(n > 0 for n in marks), (name, marks)
                if charts:
                    chart = page.locator('[data-testid="stVegaLiteChart"]').first
                    assert _inked_share(chart.screenshot()) > 0.01, name
                if not path:  # the Overview leads with the verdict's table, its chart and the sentences folded
                    assert page.locator('[data-testid="stDataFrame"]').count() == 3
                    assert page.get_by_text("The verdict in sentences").count() == 1
        finally:
            browser.close()
    assert all((ARTIFACTS / f"dashboard-{path or 'overview'}.png").stat().st_size > 10_000 for path in PAGES)
