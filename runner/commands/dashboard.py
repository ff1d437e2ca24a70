"""`runner dashboard`: serve the Streamlit dashboard (`dashboard/app.py`) over a warehouse.

The command replaces itself with `python -m streamlit run dashboard/app.py` (headless, usage
statistics off, listening on --host/--port), passing the warehouse both as VJEPA_WAREHOUSE and as
`-- --warehouse PATH`. A missing or empty warehouse is not an error here: the dashboard explains
what to run. Bad flags (a port out of range, an empty host) are one line and exit code 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from runner.app import app
from runner.options import WarehouseOption, fail, user_errors
from vjepa_core.paths import WAREHOUSE_ENV, warehouse_path

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
# Waits for the server to accept connections, then opens the page: streamlit's own opener needs a
# non-headless server, which first asks for an e-mail address on the terminal.
OPENER = """
import socket, sys, time, webbrowser
host, port, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for _ in range(240):
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        webbrowser.open(url)
        break
    except OSError:
        time.sleep(0.25)
"""


def streamlit_command(warehouse: Path, *, host: str, port: int) -> list[str]:
    """The argv that serves the dashboard for `warehouse` on host:port."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false", "--", "--warehouse", str(warehouse)]


@app.command()
@user_errors
def dashboard(
    warehouse: Path | None = WarehouseOption,
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8501, help="Port to listen on."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser tab."),
) -> None:
    """Open the Streamlit dashboard: leaderboard, scaling, sweeps, run detail, compare, live progress.

    Example: runner dashboard --warehouse warehouse/vjepa.duckdb --port 8501
    """
    if not 1 <= port <= 65535:
        fail(f"--port must be between 1 and 65535, got {port}")
    if not host.strip():
        fail("--host must not be empty")
    path = warehouse_path(warehouse).resolve()
    if path.exists() and not path.is_file():
        fail(f"--warehouse {path} is a folder; pass the DuckDB file inside it")
    typer.echo(f"dashboard for {path} on http://{host}:{port}", err=True)
    if not no_browser:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        subprocess.Popen([sys.executable, "-c", OPENER, shown, str(port), f"http://{shown}:{port}"],
                         start_new_session=True)
    command = streamlit_command(path, host=host, port=port)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, command, {**os.environ, WAREHOUSE_ENV: str(path)})
