"""`runner convert CHECKPOINT OUT`: Meta's V-JEPA 2 / 2.1 checkpoint as a transformers folder (`release.convert`)."""

from __future__ import annotations

from pathlib import Path

import typer

from runner.app import app, console, exec_flag
from runner.options import fail, progress_enabled, stdout_console, user_errors


@app.command()
@user_errors
def convert(
    checkpoint: str = typer.Argument(..., help="A .pt checkpoint of Meta's V-JEPA 2 or 2.1 code (Meta's file or "
                                     "your own pretraining), or one of the V-JEPA 2.1 names "
                                     "(vjepa2_1_vit_base_384, ..., downloaded into the torch hub cache)."),
    out: Path = typer.Argument(..., help="The folder to write: new or empty."),
    heads: int | None = typer.Option(None, "--heads", min=1, help="Attention heads, for a width Meta did not "
                                     "release and no params-pretrain.yaml beside the checkpoint."),
    crop_size: int | None = typer.Option(None, "--crop-size", min=1, help="Input resolution in px (default: the "
                                         "file's, else 384 for V-JEPA 2.1 and 256 for V-JEPA 2)."),
    quiet: bool = exec_flag("progress"),
) -> None:
    """Convert an official V-JEPA 2 or 2.1 encoder checkpoint into a standard save_pretrained folder.

    OUT gets config.json and model.safetensors (a transformers VJEPA2Model: Meta's encoder, every key checked), the video processor at its crop, for V-JEPA 2.1 its model code (trust_remote_code=True until transformers carries 2.1) and README.md, a short model card. The folder is opened with transformers' AutoModel and compared with the converted encoder before it appears; nothing is written otherwise. Pass OUT to any command as --model.
    """  # noqa: E501 (typer keeps a docstring's line breaks: one line per paragraph)
    from vjepa_core.release.convert import ConvertCheckFailed, convert_checkpoint

    overrides = {key: value for key, value in (("num_attention_heads", heads), ("crop_size", crop_size)) if value}
    say = (lambda line: console.print(f"[dim]{line}[/]")) if progress_enabled(quiet) else (lambda _: None)
    try:
        report = convert_checkpoint(checkpoint, out, say=say, **overrides)
    except ConvertCheckFailed as error:
        fail(str(error), code=1)
    config = report.config
    version = "V-JEPA 2.1" if getattr(config, "hierarchical_layers", None) else "V-JEPA 2"
    shown = stdout_console()
    shown.print(f"converted {report.source.name} ({report.key}) to {out}: {version}, width {config.hidden_size}, "
                f"{config.num_hidden_layers} blocks, {config.num_attention_heads} heads, {config.crop_size} px; "
                f"{len(report.files)} files", markup=False, highlight=False)
    shown.print(f"checked: AutoModel gives the converted encoder's tokens within max |Δ| = "
                f"{report.max_token_delta:.2g}", markup=False, highlight=False)
    remote = ", trust_remote_code=True" if version == "V-JEPA 2.1" else ""
    shown.print(f"use it: --model {out}, or AutoModel.from_pretrained(\"{out}\"{remote})", markup=False,
                highlight=False)
