"""A released Space's classify latency as a visitor meets it: `python app.py` in its own process, gradio_client.

`python -m benchmarks.space_latency SPACE_DIR VIDEO [--calls 7] [--no-engine] [--json]`

Starts `python app.py --port P` in SPACE_DIR (`runner release RUN OUT --space`) in an interpreter where vjepa-lab
cannot be imported (and, with `--no-engine`, neither can the engines' runtimes, openvino and onnxruntime: the app
then runs transformers), calls its
Classify button's endpoint (`/classify_top`) once on VIDEO as a warm-up, then `--calls` times, and prints the
engine the page names and two medians: the app's own "Classified in X ms" (decode, preprocessing and the model)
and the call's wall time at the client (upload and reply too).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

STARTUP_SECONDS = 240.0
BLOCKED = ("vjepa_core", "runner", "demo", "dashboard")
RUNTIMES = ("openvino", "onnxruntime")  # what the app runs a released engine with


def serve(folder: Path, port: int, *, blocked: tuple[str, ...]) -> subprocess.Popen:
    script = (f"import sys; [sys.modules.__setitem__(m, None) for m in {blocked!r}]; import runpy; "
              f"sys.argv = ['app.py', '--port', '{port}']; runpy.run_path('app.py', run_name='__main__')")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.Popen([sys.executable, "-c", script], cwd=folder, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def connect(url: str, server: subprocess.Popen) -> object:
    from gradio_client import Client

    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the app exited with {server.returncode}")
        try:
            return Client(url, verbose=False)
        except Exception:  # not listening yet
            time.sleep(1.0)
    raise SystemExit(f"the app did not come up in {STARTUP_SECONDS:.0f} s")


def measure(folder: Path, video: Path, *, calls: int, with_engine: bool) -> dict[str, object]:
    from gradio_client import handle_file

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = serve(folder, port, blocked=BLOCKED + (() if with_engine else RUNTIMES))
    try:
        client = connect(f"http://127.0.0.1:{port}/", server)
        client.predict(handle_file(video), 1, api_name="/classify_top")  # warm-up
        app_ms, wall_ms, engine = [], [], ""
        for _ in range(calls):
            start = time.perf_counter()
            reply = client.predict(handle_file(video), 1, api_name="/classify_top")
            wall_ms.append(1000 * (time.perf_counter() - start))
            # A Space released before engines answers the labels alone, with no latency line.
            found = re.fullmatch(r"Classified in (\d+) ms with (.+)\.", reply[1]) if isinstance(reply, tuple) else None
            if found:
                app_ms.append(float(found.group(1)))
                engine = found.group(2)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return {"space": str(folder), "video": str(video), "engine": engine or "not named (an app before engines)",
            "calls": calls, "app_ms_median": statistics.median(app_ms) if app_ms else None,
            "wall_ms_median": round(statistics.median(wall_ms), 1), "app_ms": app_ms,
            "wall_ms": [round(ms, 1) for ms in wall_ms]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("space", type=Path, help="a folder `runner release RUN OUT --space` wrote")
    parser.add_argument("video", type=Path, help="the clip to classify")
    parser.add_argument("--calls", type=int, default=7, help="timed calls after the warm-up")
    parser.add_argument("--no-engine", action="store_true", help="hide the engines' runtimes (openvino, "
                        "onnxruntime) from the app: it runs transformers")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = measure(args.space.resolve(), args.video.resolve(), calls=args.calls, with_engine=not args.no_engine)
    if args.json:
        print(json.dumps(result))
    else:
        inside = f"{result['app_ms_median']:.0f} ms in the app, " if result["app_ms_median"] is not None else ""
        print(f"{result['engine']}: {inside}{result['wall_ms_median']:.0f} ms at the client (median of "
              f"{result['calls']} calls after a warm-up)")


if __name__ == "__main__":
    main()
