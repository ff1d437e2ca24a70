"""`runner predict`: classify videos (files, folders, globs, list files) with a checkpoint, whole or by window."""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import typer

from runner.app import EngineOption, app, exec_flag
from runner.bulk import VIDEO_SET_HELP, Tally
from runner.options import WarehouseOption, progress_enabled, user_errors
from vjepa_core.errors import UserError
from vjepa_core.paths import RESULTS_ENV


@app.command()
@user_errors
def predict(
    checkpoint: Path = typer.Argument(..., help="A checkpoint folder (results/checkpoints/<run_id>), or a folder "
                                      "runner release wrote (merged, adapter-only or a Space)."),
    videos: list[str] = typer.Argument(..., help=f"Video files, or {VIDEO_SET_HELP}."),
    top_k: int = typer.Option(3, "--top-k", "-k", help="How many labels to print per video (or window)."),
    window: float | None = typer.Option(None, "--window", metavar="SECONDS",
                                        help="Classify overlapping windows of this many seconds of an untrimmed "
                                             "video, streamed (never loaded whole): one row per window."),
    stride: float | None = typer.Option(None, "--stride", metavar="SECONDS", show_default="half the window",
                                        help="Seconds between the starts of consecutive windows."),
    batch_size: int = typer.Option(8, "--batch-size", help="Views per model call (windows)."),
    model: str | None = typer.Option(None, help="Load the checkpoint onto this base model instead of the "
                                     "one in its manifest (must have the same weights)."),
    device: str = exec_flag("device"),
    engine: str = EngineOption,
    decoder: str = exec_flag("decoder"),
    results: Path | None = typer.Option(None, "--results", envvar=RESULTS_ENV,
                                        show_default="the checkpoint's results folder",
                                        help="Results folder whose engines/ keeps prepared engines."),
    warehouse: Path | None = WarehouseOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per video (or window)."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV: a header, then one row per video (or window)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write every row to this .csv or .json file, "
                                    "once all videos are done (written atomically)."),
    quiet: bool = exec_flag("progress"),
) -> None:
    """Classify videos with a saved checkpoint and print the top-k labels.

    VIDEOS may be files, folders (every video under them), globs or list files. A file that cannot be classified (no video stream, empty, corrupt) is one warning line and a row with an `error` field, and the others are classified: the summary says `19 classified, 1 skipped: no video stream`.

    With --window, each video is cut into overlapping windows (e.g. --window 2 --stride 1) and every window gets its own row: start, end, top-k labels and probabilities.

    Exit codes: 0 every video classified; 1 some skipped; 2 bad usage or no video could be classified (nothing is written).
    """  # noqa: E501 (typer keeps a docstring's line breaks: one line per paragraph)
    from vjepa_core.data.videosets import check_video_set, find_videos
    from vjepa_core.inference.engines import check_engine_name
    from vjepa_core.inference.predict import Predictor
    from vjepa_core.paths import checkpoint_results, engines_dir, warehouse_path

    _check_options(top_k=top_k, window=window, stride=stride, batch_size=batch_size, as_json=as_json,
                   as_csv=as_csv, out=out)
    check_engine_name(engine)
    found = find_videos(videos)
    # Every file is probed before the model loads and before any is classified: bad input shows in seconds,
    # and a set in which nothing decodes is one error line.
    checked = check_video_set(found, decoder=decoder, progress=progress_enabled(quiet) and len(found.items) > 1)
    predictor = Predictor.from_checkpoint(checkpoint, base_model=model, device=device, decoder=decoder, engine=engine,
                                          engine_cache=engines_dir(checkpoint_results(checkpoint, results)),
                                          warehouse=warehouse_path(warehouse), progress=progress_enabled(quiet))
    printer = RowPrinter("json" if as_json else "csv" if as_csv else "text", top_k,
                         columns=_columns(predictor.labels, top_k, windows=window is not None))
    tally = Tally(len(found.items), verb="classified", skipped=checked.skipped)
    started = time.perf_counter()
    paths = [Path(item.path) for item in checked.items]
    if window is None:
        _report_skipped(tally, printer)
        _predict_videos(predictor, paths, printer, tally, progress=progress_enabled(quiet) and not tally.single)
    else:
        # Every video is planned before any is classified, too: one no window fits is skipped.
        plans = _plans(predictor, paths, tally, window=window, stride=window / 2 if stride is None else stride)
        tally.check_usable(found.subject, usable=len(plans))
        _report_skipped(tally, printer)
        for video, header, windows in plans:
            _predict_windows(predictor, video, windows, printer, tally, header=header, batch_size=batch_size,
                             progress=progress_enabled(quiet))
        _windows_summary(sum(len(windows) for _, _, windows in plans), time.perf_counter() - started,
                         engine=predictor.engine.engine)
    tally.check_usable(found.subject)
    if not tally.single:
        typer.echo(tally.summary(), err=True)
    if out is not None:
        from vjepa_core.inference.windows import write_rows

        typer.echo(f"wrote {len(printer.rows)} rows to {write_rows(out, printer.rows)}", err=True)
    tally.exit()


def _report_skipped(tally: Tally, printer: RowPrinter) -> None:
    """The files skipped before classifying: one warning line each, and a row with the reason."""
    tally.warn()
    for path, reason in tally.skipped:
        printer.error(Path(path), reason)


def _check_options(*, top_k: int, window: float | None, stride: float | None, batch_size: int, as_json: bool,
                   as_csv: bool, out: Path | None) -> None:
    from vjepa_core.inference.windows import check_table_path, check_window

    if top_k < 1:
        raise UserError(f"--top-k must be at least 1, got {top_k}")
    if stride is not None and window is None:
        raise UserError("--stride needs --window (the window length in seconds)")
    if window is not None:
        check_window(window, window / 2 if stride is None else stride)
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    if as_json and as_csv:
        raise UserError("choose one of --json and --csv")
    if out is not None:
        check_table_path(out)


def _columns(labels: list[str], top_k: int, *, windows: bool) -> list[str]:
    """The table's columns, known before any row: a bad first file still gets the full CSV header."""
    ranks = [name for rank in range(1, min(top_k, len(labels)) + 1) for name in (f"label_{rank}", f"prob_{rank}")]
    if not windows:
        return ["video", *ranks, "error"]
    return ["video", "start", "end", *ranks, *(f"p_{label}" for label in labels), "error"]


def _predict_videos(predictor: Any, videos: list[Path], printer: RowPrinter, tally: Tally, *,
                    progress: bool) -> None:
    from vjepa_core.errors import VideoDecodeError
    from vjepa_core.progress import progress_bar

    for video in progress_bar(videos, desc="classify", unit="videos", enabled=progress):
        try:
            result = predictor.classify(video)
        except VideoDecodeError as error:
            _skip_or_raise(video, error, printer, tally)
        else:
            tally.ok()
            printer.video(video, result.as_dict(printer.top_k))


def _skip_or_raise(video: Path, error: Any, printer: RowPrinter, tally: Tally) -> None:
    """A video that fails to decode among many is counted, warned about and written as an error row; the one
    video of a single-file command is that command's error."""
    if tally.single:
        raise error
    tally.skip(str(video), error.reason)
    printer.error(video, error.reason)


def _plans(predictor: Any, videos: list[Path], tally: Tally, *, window: float,
           stride: float) -> list[tuple[Path, str, list[Any]]]:
    """Each video's windows; a video that cannot be planned (unreadable, shorter than a window) is skipped."""
    plans = []
    for video in videos:
        try:
            plans.append(_plan(predictor, video, window=window, stride=stride))
        except UserError as error:
            if tally.single:
                raise
            tally.skip(str(video), error.reason.removeprefix(f"{video}: "), warn=False)
    return plans


def _plan(predictor: Any, video: Path, *, window: float, stride: float) -> tuple[Path, str, list[Any]]:
    from vjepa_core.data import probe_video
    from vjepa_core.inference.windows import plan_windows, short_window_note

    pre = predictor.pre
    info = probe_video(video, decoder=predictor.decoder)
    windows = plan_windows(info, window=window, stride=stride, frames_per_clip=pre["frames_per_clip"],
                           frame_stride=pre["frame_stride"], num_clips=pre["eval_clips"])
    note = short_window_note(windows, pre["frames_per_clip"], pre["frame_stride"])
    if note:
        typer.secho(f"warning: {video.name}: {note}", err=True, fg="yellow")
    header = (f"{video}: {info.num_frames / info.fps:.1f} s ({info.num_frames} frames at {info.fps:g} fps, "
              f"{info.width}x{info.height}): {len(windows)} windows of {window:g} s every {stride:g} s")
    return video, header, windows


def _predict_windows(predictor: Any, video: Path, windows: list[Any], printer: RowPrinter, tally: Tally, *,
                     header: str, batch_size: int, progress: bool) -> None:
    """Print each window's row as it is classified; a video that fails to decode part-way keeps the rows it
    printed, and is counted as skipped with the reason."""
    from vjepa_core.errors import VideoDecodeError
    from vjepa_core.inference.windows import classify_windows
    from vjepa_core.progress import progress_bar

    printer.header(header)
    predictions = classify_windows(predictor, video, windows, batch_size=batch_size)
    try:
        for prediction in progress_bar(predictions, total=len(windows), desc=video.name, unit="windows",
                                       enabled=progress):
            printer.window(video, prediction)
    except VideoDecodeError as error:
        _skip_or_raise(video, error, printer, tally)
    else:
        tally.ok()


def _windows_summary(windows: int, seconds: float, *, engine: str) -> None:
    from vjepa_core.models.device import process_peak_rss

    typer.echo(f"{windows} windows in {seconds:.1f} s ({windows / max(seconds, 1e-9):.1f} windows/s, engine "
               f"{engine}), peak RSS {process_peak_rss() / 2**20:.0f} MiB", err=True)


class RowPrinter:
    """Prints rows as text, JSON lines or CSV on stdout as they come, and keeps them for --out.

    Every kept row has every one of `columns` (None where it has no value): a bad file's row is its
    video and `error`."""

    def __init__(self, style: str, top_k: int, *, columns: list[str]) -> None:
        self.style, self.top_k, self.columns = style, top_k, columns
        self.rows: list[dict[str, Any]] = []
        self._csv: csv.DictWriter | None = None

    def header(self, text: str) -> None:
        if self.style == "text":
            typer.echo(text)

    def video(self, video: Path, result: dict[str, Any]) -> None:
        """`result`: `Prediction.as_dict` (top-k labels and timings)."""
        if self.style == "json":
            typer.echo(json.dumps({"video": str(video), **result}))
        elif self.style == "text":
            typer.echo(f"{video}")
            for top in result["top"]:
                typer.echo(f"  {top['prob']:6.1%}  {top['label']}")
        row: dict[str, Any] = {"video": str(video)}
        for rank, top in enumerate(result["top"], start=1):
            row[f"label_{rank}"], row[f"prob_{rank}"] = top["label"], top["prob"]
        self._keep(row)

    def window(self, video: Path, prediction: Any) -> None:
        if self.style == "json":
            typer.echo(json.dumps({"video": str(video), **prediction.row(self.top_k)}))
        elif self.style == "text":
            labels = "  ".join(f"{label} {prob:5.1%}" for label, prob in prediction.top(self.top_k))
            typer.echo(f"  {prediction.window.start:8.2f} - {prediction.window.end:8.2f} s   {labels}")
        self._keep({"video": str(video), **prediction.flat_row(self.top_k)})

    def error(self, video: Path, reason: str) -> None:
        """A file that could not be classified: its row says why (the warning line is the tally's)."""
        if self.style == "json":
            typer.echo(json.dumps({"video": str(video), "error": reason}))
        self._keep({"video": str(video), "error": reason})

    def _keep(self, row: dict[str, Any]) -> None:
        row = {name: row.get(name) for name in self.columns}
        self.rows.append(row)
        if self.style == "csv":
            if self._csv is None:
                self._csv = csv.DictWriter(sys.stdout, fieldnames=self.columns)
                self._csv.writeheader()
            self._csv.writerow(row)
            sys.stdout.flush()
