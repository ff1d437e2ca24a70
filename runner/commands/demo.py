"""`runner demo`: serve the Gradio demo over the checkpoints in the results folder (see `demo/`)."""

from __future__ import annotations

from pathlib import Path

import typer

from runner.app import EngineOption, app
from runner.options import ResultsOption, WarehouseOption, user_errors
from vjepa_core.paths import results_path, warehouse_path


@app.command()
@user_errors
def demo(
    checkpoints: Path | None = typer.Option(None, "--checkpoints", help="Checkpoints folder "
                                            "(default: <results>/checkpoints)."),
    results: Path | None = ResultsOption,
    warehouse: Path | None = WarehouseOption,
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(7860, help="Port to listen on."),
    share: bool = typer.Option(False, "--share", help="Also open a public gradio.live link (off by default)."),
    auth: str | None = typer.Option(None, "--auth", help="Require this login, as user:password."),
    max_mb: float = typer.Option(200.0, "--max-mb", help="Largest accepted video file, in MB."),
    max_seconds: float = typer.Option(120.0, "--max-seconds", help="Longest accepted video, in seconds."),
    engine: str = EngineOption,
) -> None:
    """Classify videos with any saved checkpoint in a Gradio app (upload, webcam or example clips).

    Example: runner demo --results results --port 7860
    """
    from demo.__main__ import parse_auth, serve

    login = parse_auth(auth)  # a malformed --auth fails before anything is built
    serve(checkpoints or results_path(results) / "checkpoints", warehouse=warehouse_path(warehouse), host=host,
          port=port, share=share, auth=login, max_mb=max_mb, max_seconds=max_seconds, engine=engine)
