"""`runner pretrain`: self-supervised V-JEPA pretraining on unlabelled videos -> a base model folder.

Bad input (no decodable video, videos shorter than a clip, a model that is not V-JEPA 2, masks that
cannot work on the model's token grid, a probe set without classes) is one line and exit 2, with
nothing written. Some files skipped (unreadable, too short) is one warning line each and exit 1 once
the others are pretrained on. A run that fails later is recorded as failed (exit 1); a killed one
resumes from its last finished epoch when started again with the same arguments.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from runner.app import app, exec_flag
from runner.bulk import Tally
from runner.options import (
    ResultsOption,
    WarehouseOption,
    option_group,
    progress_enabled,
    set_flags,
    spec_parameters,
    stdout_console,
    user_errors,
)
from vjepa_core.paths import results_path, warehouse_path
from vjepa_core.pretrain.spec import PretrainSpec

# Every PretrainSpec field as an option; the command gets `overrides`: the flags set, laid over the defaults.
with_pretrain_options = option_group(spec_parameters(PretrainSpec, panel="Pretraining options"), set_flags,
                                     "overrides")


@app.command()
@user_errors
@with_pretrain_options
def pretrain(
    force: bool = typer.Option(False, "--force", help="Start again from scratch even if this run finished or has "
                               "saved epochs."),
    device: str = exec_flag("device"),
    decoder: str = exec_flag("decoder"),
    workers: int = exec_flag("num_workers", num_workers=0),
    warehouse: Path | None = WarehouseOption,
    results: Path | None = ResultsOption,
    quiet: bool = exec_flag("progress"),
    overrides: dict[str, Any] | None = None,
) -> None:
    """Pretrain a V-JEPA 2 encoder on unlabelled videos with its own objective (masked latent prediction).

    The context encoder sees only the unmasked tokens, an EMA target encoder embeds the whole clip, and the
    model's predictor fills the masked positions (L1). Collapse diagnostics are printed and recorded every
    epoch. The result, results/pretrained/<id>/, is a save_pretrained folder: pass it to any command as
    --model. Re-running the same command resumes a killed run from its last finished epoch.

    --data is any set of videos: a plain folder (read recursively), a glob, a list file, a CSV manifest
    with a path column, or a labelled layout (its labels are not used). A file that does not decode or is
    shorter than a clip is one warning line, counted in the summary and recorded with the run.

    Exit codes: 0 every video used; 1 some skipped, or the run failed (recorded as failed); 2 bad usage or
    no usable video (nothing is written).

    Example: runner pretrain --data videos/ --model tiny --probe-data labelled/ --epochs 10
    """
    from vjepa_core.data import resolve_data
    from vjepa_core.pretrain.loop import PretrainOptions, prepare, read_probe_set, read_videos

    spec = PretrainSpec.from_dict(overrides or {})
    root = results_path(results)
    options = PretrainOptions(device=device, decoder=decoder, num_workers=workers, progress=progress_enabled(quiet),
                              force=force)
    videos = read_videos(resolve_data(spec.data, root, progress=options.progress))
    probe = read_probe_set(resolve_data(spec.probe_data, root), seed=spec.seed) if spec.probe_data else None
    prepared = prepare(spec, videos=videos, probe_items=probe, options=options)
    tally = Tally(len(prepared.videos) + len(prepared.skipped), verb="used", skipped=prepared.skipped)
    tally.ok(len(prepared.videos))
    tally.warn()
    record = _run(prepared, root, options)
    _record(warehouse_path(warehouse), record)
    _print_summary(record.run, record)
    if record.run["status"] != "success":
        raise typer.Exit(1)
    typer.echo(tally.summary(), err=True)
    tally.exit()


def _run(prepared: Any, root: Path, options: Any) -> Any:
    """Pretrain; an error after the input checks becomes a failed record (the epochs saved so far stay)."""
    import logging

    from vjepa_core.errors import UserError, WriteFailed
    from vjepa_core.pretrain.loop import failed_pretrain_record, pretrain

    started = datetime.now()
    try:
        return pretrain(prepared, root, options)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a run's failure is data, recorded with its message
        if not isinstance(exc, UserError | WriteFailed):
            logging.getLogger(__name__).exception("pretraining %s failed", prepared.pretrain_id)
        return failed_pretrain_record(prepared, started, exc)


def _record(path: Path, record: Any) -> None:
    from vjepa_core.store.warehouse import Warehouse

    Warehouse(path).write_pretrain(record.run, record.epochs)


def _print_summary(run: dict[str, Any], record: Any) -> None:
    from runner.output import fmt, pct

    out = stdout_console()
    if run["status"] != "success":
        out.print(f"[red]pretraining {run['pretrain_id']} failed:[/] {run.get('error')}", soft_wrap=True)
        return
    if record.resumed_from == -1:
        out.print(f"already pretrained (use --force to start again): {run['output_path']}")
    elif record.resumed_from > 0:
        out.print(f"resumed after epoch {record.resumed_from}")
    probe = "" if run.get("probe_acc") is None else (
        f", probe {pct(run['initial_probe_acc'])} -> {pct(run['probe_acc'])}")
    # Every figure after "kept epoch N" is that epoch's (the last epoch's loss may be lower: it is not the one kept).
    kept_loss = next((row["loss"] for row in record.epochs if row["epoch"] == run["chosen_epoch"]), run["final_loss"])
    out.print(f"[bold green]pretrained {run['pretrain_id']}[/]: kept epoch {run['chosen_epoch']} of {run['epochs']} "
              f"(by {run['chosen_by']}), loss {fmt(kept_loss, '.4f')}, effective rank "
              f"{fmt(run['initial_effective_rank'], '.1f')} -> {fmt(run['effective_rank'], '.1f')}, embedding std "
              f"{fmt(run['initial_embedding_std'], '.3f')} -> {fmt(run['embedding_std'], '.3f')}{probe}, "
              f"{fmt(run['train_seconds'], '.0f')} s")
    out.print(f"model: {run['output_path']}\nuse it: runner run --model {run['output_path']} --data ...")
