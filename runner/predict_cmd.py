"""`runner predict`: classify videos with a saved checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from runner.app import DecoderOption, DeviceOption, app
from runner.options import user_errors


@app.command()
@user_errors
def predict(
    checkpoint: Path = typer.Argument(..., help="A checkpoint folder (results/checkpoints/<run_id>)."),
    videos: list[Path] = typer.Argument(..., help="One or more video files."),
    top_k: int = typer.Option(3, "--top-k", "-k", help="How many labels to print per video."),
    model: str | None = typer.Option(None, help="Load the checkpoint onto this base model instead of the "
                                     "one in its manifest (must have the same weights)."),
    device: str = DeviceOption,
    decoder: str = DecoderOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per video."),
) -> None:
    """Classify videos with a saved checkpoint and print the top-k labels."""
    from vjepa_core.inference.predict import Predictor

    predictor = Predictor.from_checkpoint(checkpoint, base_model=model, device=device, decoder=decoder)
    for video in videos:
        result = predictor.classify(video)
        if as_json:
            typer.echo(json.dumps({"video": str(video), **result.as_dict(top_k)}))
            continue
        typer.echo(f"{video}")
        for label, prob in result.top(top_k):
            typer.echo(f"  {prob:6.1%}  {label}")
