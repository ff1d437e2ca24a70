"""`runner embed`: one vector per video (or window) of any set of videos into parquet and the warehouse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from runner.app import EngineOption, app, exec_flag
from runner.bulk import VIDEO_SET_HELP, Tally, read_videos
from runner.options import ResultsOption, WarehouseOption, progress_enabled, user_errors
from vjepa_core.errors import UserError
from vjepa_core.paths import results_path, warehouse_path


@app.command()
@user_errors
def embed(
    data: list[str] = typer.Argument(..., help=f"'synthetic', video files, or {VIDEO_SET_HELP}."),
    model: str | None = typer.Option(None, "--model", show_default="tiny, or the checkpoint's base model",
                                     help="Base model: a preset (tiny, small, tiny-jepa), a hub id or a local folder."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="Embed with this trained checkpoint's pooler "
                                           "(results/checkpoints/<run_id>, or a folder runner release wrote) "
                                           "instead of mean-pooled encoder tokens."),
    window: float | None = typer.Option(None, "--window", metavar="SECONDS", help="One vector per window of this "
                                        "many seconds (streamed) instead of one per video."),
    stride: float | None = typer.Option(None, "--stride", metavar="SECONDS", show_default="half the window",
                                        help="Seconds between window starts."),
    frames_per_clip: int | None = typer.Option(None, "--frames-per-clip", show_default="16, or the checkpoint's",
                                               help="Frames the encoder sees per clip."),
    frame_stride: int | None = typer.Option(None, "--frame-stride", show_default="2, or the checkpoint's",
                                            help="Take every Nth frame when sampling a clip."),
    batch_size: int = typer.Option(8, "--batch-size", help="Clips per encoder call."),
    out: Path | None = typer.Option(None, "--out", "-o", show_default="<results>/embeddings/<fingerprint>.parquet",
                                    help="Parquet file to write."),
    device: str = exec_flag("device"),
    engine: str = EngineOption,
    decoder: str = exec_flag("decoder"),
    workers: int | None = exec_flag("num_workers"),
    warehouse: Path | None = WarehouseOption,
    results: Path | None = ResultsOption,
    quiet: bool = exec_flag("progress"),
) -> None:
    """Embed every video of a set with the frozen encoder (mean-pooled tokens) or a checkpoint's pooler.

    DATA is any set of videos: a plain folder (read recursively), class folders (their labels are kept with the vectors), a glob, a list file or a CSV manifest. Vectors go to a parquet file and to the warehouse's `embeddings` table (keyed by model fingerprint and video). Encoder tokens come from the shared token cache: a second call encodes 0 clips.

    A file that cannot be embedded (not a video, no video stream, shorter than the window) is one warning line, counted in the summary and recorded in the warehouse's `embedding_skips` table.

    Exit codes: 0 every video embedded; 1 some skipped; 2 bad usage or no video could be embedded (nothing is written).

    Example: runner embed synthetic --model tiny
    """  # noqa: E501 (typer keeps a docstring's line breaks: one line per paragraph)
    from vjepa_core.data.datasets import label_names
    from vjepa_core.inference.embeddings import Windowing, check_parquet_path, embed_videos, write_parquet
    from vjepa_core.inference.engines import check_engine_name
    from vjepa_core.inference.windows import check_window
    from vjepa_core.store.warehouse import Warehouse

    check_engine_name(engine)
    if stride is not None and window is None:
        raise UserError("--stride needs --window (the window length in seconds)")
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    if out is not None:
        check_parquet_path(out)
    windowing = None if window is None else Windowing(window, window / 2 if stride is None else stride)
    if windowing is not None:
        check_window(windowing.window, windowing.stride)
    root = results_path(results)
    videos = read_videos(data, results=root, decoder=decoder, progress=progress_enabled(quiet))
    tally = Tally(len(videos.items) + len(videos.skipped), verb="embedded", skipped=videos.skipped)
    setup = _model(model, checkpoint, label_names(videos.items) or ["video"], frames_per_clip, frame_stride)
    feed = _feed(device, setup["precision"], batch_size, workers, progress_enabled(quiet))
    clip_cfg = _clip_config(setup, decoder)
    feed = _with_engine(feed, setup, engine, clip_cfg.frames_per_clip, root, warehouse=warehouse_path(warehouse))
    result = embed_videos(setup["model"].to(feed.device), videos.items, source=setup["source"], clip_cfg=clip_cfg,
                          feed=feed, cache_root=root / "cache", model_name=setup["name"], windowing=windowing)
    for path, reason in result.skipped:
        tally.skip(path, reason, warn=False)
    tally.ok(result.rows["video"].nunique() if len(result.rows) else 0)
    tally.check_usable(videos.subject)
    tally.warn()
    rows = result.rows.assign(dataset=videos.name, model=setup["name"], checkpoint=setup["run_id"])
    suffix = "" if windowing is None else f"-w{windowing.window:g}s{windowing.stride:g}"
    parquet = write_parquet(out or root / "embeddings" / f"{result.fingerprint}{suffix}.parquet", rows, result.vectors)
    store = Warehouse(warehouse_path(warehouse))
    skipped = _skip_rows(tally.skipped, windowing=windowing, dataset=videos.name, fingerprint=result.fingerprint)
    written = store.write_embeddings(rows, result.vectors, skipped=skipped)
    what = "one per window" if windowing else "one per video"
    typer.echo(f"data: {videos.describe()}")
    typer.echo(f"embedded {tally.done} videos: {len(rows)} vectors ({what}), {result.vectors.shape[1]} dims "
               f"({setup['describe']}, engine {feed.engine or feed.precision}), fingerprint {result.fingerprint}")
    typer.echo(f"encoded clips: {result.encoded_clips} (cached: {result.cache_hits})")
    typer.echo(f"parquet:   {parquet}")
    typer.echo(f"warehouse: {warehouse_path(warehouse)}, table embeddings ({written} rows)")
    typer.echo(tally.summary(), err=True)
    tally.exit()


def _skip_rows(skipped: list[tuple[str, str]], *, windowing: Any, dataset: str, fingerprint: str) -> Any:
    """The warehouse's `embedding_skips` rows (a DataFrame): each file this set of vectors lacks, and why."""
    from datetime import datetime

    import pandas as pd

    now = datetime.now()
    window, stride = (windowing.window, windowing.stride) if windowing else (None, None)
    return pd.DataFrame([{"model_fingerprint": fingerprint, "video": path, "window_s": window, "stride_s": stride,
                          "reason": reason, "dataset": dataset, "created_at": now} for path, reason in skipped])


def _model(model: str | None, checkpoint: Path | None, labels: list[str], frames_per_clip: int | None,
           frame_stride: int | None) -> dict[str, Any]:
    """The model to embed with, what to call it, and the preprocessing it takes."""
    from vjepa_core.models import describe_model, load_model
    from vjepa_core.spec import RunSpec

    if checkpoint is None:
        name = model or RunSpec().model
        described = describe_model(name)
        return {"model": load_model(name, labels), "name": described, "source": "encoder", "run_id": None,
                "precision": "auto", "describe": f"mean-pooled encoder tokens of {described}",
                "frames_per_clip": frames_per_clip or RunSpec().frames_per_clip,
                "frame_stride": frame_stride or RunSpec().frame_stride}
    from vjepa_core.release.reading import open_checkpoint

    loaded = open_checkpoint(checkpoint, base_model=model)
    pre = loaded.manifest["preprocessing"]
    for flag, given, own in (("--frames-per-clip", frames_per_clip, pre["frames_per_clip"]),
                             ("--frame-stride", frame_stride, pre["frame_stride"])):
        if given is not None and given != own:
            raise UserError(f"{flag} {given}: the checkpoint's pooler was trained on {own}; leave it out")
    name = describe_model(model or loaded.manifest["base_model"])
    return {"model": loaded.model, "name": name, "source": "pooler", "run_id": loaded.manifest["run_id"],
            "precision": loaded.spec.precision, "describe": f"the pooler of checkpoint {loaded.manifest['run_id']}",
            "frames_per_clip": pre["frames_per_clip"], "frame_stride": pre["frame_stride"], "preprocessing": pre}


def _feed(device: str, precision: str, batch_size: int, workers: int | None, progress: bool) -> Any:
    from vjepa_core.models.device import resolve_device, resolve_precision
    from vjepa_core.training.features import FeedConfig, default_workers

    resolved = resolve_device(device)
    return FeedConfig(device=resolved, precision=resolve_precision(precision, resolved), batch_size=batch_size,
                      num_workers=default_workers() if workers is None else workers, encode_batch_size=batch_size,
                      progress=progress)


def _with_engine(feed: Any, setup: dict[str, Any], engine: str, frames: int, results: Path, *,
                 warehouse: Path) -> Any:
    """`feed` with the encoder under `engine`; an eager engine keeps today's path at its precision. A checkpoint's
    engine is checked on its run's validation views, as `runner predict` checks it."""
    from dataclasses import replace

    from vjepa_core.inference.engines.prepare import prepare_engine
    from vjepa_core.inference.views import validation_evidence
    from vjepa_core.paths import engines_dir

    model = setup["model"].to(feed.device)
    evidence = (validation_evidence(setup["run_id"], warehouse, setup["preprocessing"])
                if setup["run_id"] is not None else None)
    prepared = prepare_engine(model, part="encoder", engine=engine, device=feed.device, precision=feed.precision,
                              frames=frames, crop=model.config.crop_size, cache_root=engines_dir(results),
                              model_name=setup["name"], evidence=evidence, progress=feed.progress)
    if prepared.needs_model:
        return replace(feed, precision=prepared.engine)
    return replace(feed, encoder=prepared, engine=prepared.engine)


def _clip_config(setup: dict[str, Any], decoder: str) -> Any:
    from vjepa_core.data.clips import ClipConfig

    for flag in ("frames_per_clip", "frame_stride"):
        if setup[flag] < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be at least 1, got {setup[flag]}")
    return ClipConfig(setup["frames_per_clip"], setup["frame_stride"], setup["model"].config.crop_size, decoder)
