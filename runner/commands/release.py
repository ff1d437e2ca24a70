"""`runner release RUN_ID OUT`: a run as a folder the world's tools open (`vjepa_core.release`)."""

from __future__ import annotations

from pathlib import Path

import typer

from runner.app import app, console, exec_flag, existing_warehouse
from runner.options import ResultsOption, WarehouseOption, fail, progress_enabled, stdout_console, user_errors
from vjepa_core.inference.engines import SPACE, auto_help, space_choices
from vjepa_core.paths import results_path


@app.command()
@user_errors
def release(
    run_id: str = typer.Argument(..., help="A run id or a unique prefix of one (runner list)."),
    out: Path = typer.Argument(..., help="The folder to write: new or empty (with --force, an earlier release)."),
    dtype: str = typer.Option("fp32", "--dtype", help="Weights in fp32, fp16 or bf16: half the size, logits off by "
                              "up to a few hundredths (measured at release, written on the model card)."),
    adapter_only: bool = typer.Option(False, "--adapter-only", help="LoRA runs: the PEFT adapter, the trained head "
                                      "(and pooler), and a reference to the base model, instead of merged weights."),
    space: bool = typer.Option(False, "--space", help="Write a Hugging Face Space: a Gradio app that imports no "
                               "vjepa-lab code, its requirements, 2-3 test clips, and the model in OUT/model."),
    engine: str = typer.Option("auto", "--engine", help=f"With --space: the engine the app runs (its files in "
                               f"OUT/model/openvino or OUT/model/onnx, run by OpenVINO or ONNX Runtime), one of "
                               f"{', '.join(space_choices())}. "
                               f"{auto_help(SPACE)}."),
    force: bool = typer.Option(False, "--force", help="Replace an earlier release in OUT."),
    warehouse: Path | None = WarehouseOption,
    results: Path | None = ResultsOption,
    quiet: bool = exec_flag("progress"),
) -> None:
    """Release a run as a standalone transformers folder with a model card generated from the warehouse.

    OUT gets config.json (labels, num_frames), model.safetensors (every weight, LoRA merged), the video processor that reproduces the run's evaluation preprocessing, README.md (the model card: test accuracy with its interval, chance level, per-class scores, confusion matrix, its matrix's table and what the matrix's verdict says of it, how to reproduce it) and confusion_matrix.png. Plain transformers opens it: pipeline("video-classification", model=OUT). The folder is checked with plain transformers before it appears, and written atomically: a run that cannot be released, or a full disk, leaves nothing.
    """  # noqa: E501 (typer keeps a docstring's line breaks: one line per paragraph)
    from vjepa_core.release.writer import ReleaseCheckFailed, ReleaseRequest, release_run

    request = ReleaseRequest(run_id, out, existing_warehouse(warehouse), results=results_path(results), dtype=dtype,
                             adapter_only=adapter_only, space=space, force=force, engine=engine,
                             progress=progress_enabled(quiet))
    say = (lambda line: console.print(f"[dim]{line}[/]")) if progress_enabled(quiet) else (lambda _: None)
    try:
        report = release_run(request, say=say)
    except ReleaseCheckFailed as error:
        fail(str(error), code=1)
    form = "merged" if report.form == "merged" else "adapter-only"
    shown = stdout_console()
    shown.print(f"released run {report.run_id} ({form}, {report.dtype}) to {report.out}: {len(report.files)} files, "
                f"{report.bytes / 1e6:.1f} MB" + (f", {report.examples} example clips" if space else ""))
    shown.print(f"checked: plain transformers{' + PEFT' if adapter_only else ''} gives vjepa-lab's logits within "
                f"max |Δ| = {report.max_logit_delta:.2g}")
    model = out / "model" if space else out
    if report.space_engine is not None:
        shown.print(f"Space engine: {report.space_engine.describe()}", markup=False, highlight=False,
                    soft_wrap=True)
    if space:
        shown.print(f"serve it: cd {out} && pip install -r requirements.txt && python app.py")
    elif not adapter_only:
        remote = ", trust_remote_code=True" if (model / "modeling_vjepa_lab.py").is_file() else ""  # V-JEPA 2.1
        shown.print(f"use it: pipeline(\"video-classification\", model=\"{model}\"{remote})  (the card: "
                    f"{model / 'README.md'})")
    else:
        shown.print(f"use it: the few lines in {model / 'README.md'} (transformers + PEFT)")
