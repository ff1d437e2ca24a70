"""What the browser tests share: Debian's headless Chromium driven by Playwright (never a downloaded browser),
servers started as users start them (`runner dashboard`, `runner demo`) on a free port and stopped with their
process group, a pixel check, and where screenshots go.

Screenshots always go to test-artifacts/. With VJEPA_DOCS_SCREENSHOTS=1 (`make screenshots`) the ones the
documentation shows are also written into docs/images/, so the pictures in the guides are regenerated, never
pasted by hand.
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

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
DOCS_IMAGES = ROOT / "docs" / "images"
DOCS_SCREENSHOTS = os.environ.get("VJEPA_DOCS_SCREENSHOTS", "") not in ("", "0")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
# The installed `runner` entry point, independent of PATH.
RUNNER = [sys.executable, "-c", "from runner.cli import main; main()"]

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason="needs Debian's chromium (scripts/install-test-tools.sh)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(args: list[str], *, log: Path, ready: str, timeout: float = 180, program: list[str] = RUNNER,
          port_flag: str = "--port") -> Iterator[str]:
    """`runner ARGS --port P` (or `program ARGS port_flag P`) in its own process group until `ready` (a URL path)
    answers 200: yield the base URL."""
    port = free_port()
    env = {**os.environ, "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    env.pop("VJEPA_WAREHOUSE", None)
    with log.open("w") as out:
        server = subprocess.Popen([*program, *args, port_flag, str(port)], stdout=out, stderr=subprocess.STDOUT,
                                  env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert server.poll() is None, f"{args[0]} exited with {server.returncode}: {log.read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(f"{url}{ready}", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                assert time.monotonic() < deadline, f"{args[0]} at {url} did not come up in {timeout:.0f} s"
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def inked_share(png: bytes) -> float:
    """Share of pixels that differ from the corner (background) colour."""
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    distance = np.abs(pixels - pixels[0, 0]).sum(axis=-1)
    return float((distance > 30).mean())


def save_screenshot(png: bytes, name: str) -> None:
    """test-artifacts/NAME.png, for a person looking at a failed run."""
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"{name}.png").write_bytes(png)


def docs_image(png: bytes, name: str) -> None:
    """docs/images/NAME.png under VJEPA_DOCS_SCREENSHOTS (`make screenshots`); nothing otherwise.

    The empty background below the content is cut off, and the colours reduced to 256: a page's flat colours
    survive, and the committed pictures weigh a third."""
    if not DOCS_SCREENSHOTS:
        return
    from PIL import Image

    picture = Image.open(io.BytesIO(png)).convert("RGB")
    pixels = np.asarray(picture, dtype=np.int16)
    inner = pixels[:, 8:-8]  # borders and scrollbars run down the edges
    inked_rows = np.flatnonzero((np.abs(inner - inner[-1, -1]).sum(axis=-1) > 30).any(axis=1))
    bottom = min(picture.height, int(inked_rows[-1]) + 32) if inked_rows.size else picture.height
    DOCS_IMAGES.mkdir(exist_ok=True)
    picture.crop((0, 0, picture.width, bottom)).quantize(
        colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
        DOCS_IMAGES / f"{name}.png", optimize=True)
