"""The demo in a real browser: `runner demo` serves one trained checkpoint, headless Chromium uploads a synthetic
clip as a person would (the file input, then Classify) and reads what the page shows: the top label equals the
one the same checkpoint gives in this process, and the strip of frames the model saw has pixels. Then the Long
video tab on an untrimmed synthetic video: as many windows as the timeline code finds, and a drawn chart.

Screenshots go to test-artifacts/, and to docs/images/ under `make screenshots` (the demo guide shows them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from demo.service import DemoService
from demo.timeline import make_timeline
from runner.orchestration.execute import execute_one
from tests.browser.chromium import docs_image, inked_share, needs_chromium, save_screenshot, serve
from vjepa_core.data.synthetic import write_long_video
from vjepa_core.spec import ExecOptions, RunSpec

pytestmark = [pytest.mark.browser, needs_chromium]
TIMEOUT_MS = 120_000


@dataclass
class Demo:
    url: str
    checkpoints: Path
    name: str


@pytest.fixture(scope="module")
def demo(synthetic_small: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`runner demo` over one checkpoint (so the picker's default is the one to check): `head` on the pretrained
    `tiny-jepa`, a few seconds of training that already tells the synthetic motions apart, as a user's would."""
    root = tmp_path_factory.mktemp("demo-browser")
    spec = RunSpec(strategy="head", data=str(synthetic_small), model="tiny-jepa", epochs=20, batch_size=4,
                   train_views=2)
    run = execute_one(spec, root / "results", root / "vjepa.duckdb", ExecOptions(progress=False))
    assert run["status"] == "success", run.get("error")
    checkpoints = root / "results" / "checkpoints"
    for url in serve(["demo", "--checkpoints", str(checkpoints), "--warehouse", str(root / "vjepa.duckdb")],
                     log=root / "server.log", ready="/"):
        yield Demo(url, checkpoints, run["run_id"])


def _upload(tab: Any, video: Path) -> None:
    tab.locator('input[type="file"][accept*="video"]').set_input_files(str(video))
    tab.locator("video").first.wait_for(timeout=TIMEOUT_MS)  # the upload finished: the player shows it


def test_upload_and_classify(demo: Demo, browser: Any, synthetic_small: Path) -> None:
    video = next((synthetic_small / "down").glob("*.mp4"))
    expected = DemoService(demo.checkpoints).classify(demo.name, video)
    top = max(expected.probs, key=expected.probs.get)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(demo.url)
        clip_tab = page.get_by_role("tabpanel").first
        _upload(clip_tab, video)
        page.get_by_role("button", name="Classify", exact=True).click()
        shown = page.locator('[data-testid="label-output-value"]').first
        shown.wait_for(timeout=TIMEOUT_MS)
        page.wait_for_function("() => document.querySelector('[data-testid=\"label-output-value\"]')"
                               ".textContent.trim().length > 0", timeout=TIMEOUT_MS)
        strip = page.locator(".block", has_text="Frames the model saw").locator("img").first
        strip.wait_for(timeout=TIMEOUT_MS)
        page.wait_for_timeout(300)  # the label bars animate to their width
        shot = page.screenshot()
        save_screenshot(shot, "demo-clip")
        docs_image(shot, "demo-clip")
        assert shown.text_content().strip() == top
        assert "decode" in page.get_by_text("preprocess").first.text_content()
        assert inked_share(strip.screenshot()) > 0.05
    finally:
        page.close()


def test_long_video_timeline(demo: Demo, browser: Any, tmp_path: Path) -> None:
    video = tmp_path / "match.mp4"
    write_long_video(video, seconds=10, fps=12, height=96, width=128, segment_seconds=3)
    windows = len(make_timeline(DemoService(demo.checkpoints), demo.name, video, window=2, stride=1).predictions)
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    try:
        page.goto(demo.url)
        page.get_by_role("tab", name="Long video").click()
        long_tab = page.get_by_role("tabpanel").filter(has_text="Untrimmed video")
        _upload(long_tab, video)
        page.get_by_role("button", name="Classify windows").click()
        summary = page.get_by_text(f"{windows} windows of 2 s every 1 s")
        summary.wait_for(timeout=TIMEOUT_MS)
        chart = page.locator(".block", has_text="Class probability over time").first
        page.wait_for_timeout(1000)  # the chart draws after the summary
        shot = page.screenshot(full_page=True)
        save_screenshot(shot, "demo-timeline")
        docs_image(shot, "demo-timeline")
        assert demo.name in summary.text_content()
        assert inked_share(chart.screenshot()) > 0.02
        # A legend names each line, inside the chart's box (a fixed height once cut it off below the axis).
        box, legend = chart.bounding_box(), chart.locator(".role-legend-label text")
        labels = {legend.nth(i).text_content(): legend.nth(i).bounding_box() for i in range(legend.count())}
        assert set(labels) == {"down", "left", "right", "still", "up", "wave"}
        assert all(label["y"] + label["height"] <= box["y"] + box["height"] for label in labels.values()), (box, labels)
    finally:
        page.close()
