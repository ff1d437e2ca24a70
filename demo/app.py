"""The Gradio app: pick a checkpoint, give a video (upload, webcam or example), see what the model says.

Thin by design: the logic is in `demo.service` and `demo.timeline`; this module lays out components and turns
`DemoError`s into `gr.Error`s, so that a bad input shows one line and the app keeps serving. Its documented
endpoints, for `gradio_client`: `/classify` (checkpoint, video) -> {label: probability}, and `/timeline`
(checkpoint, video, window s, stride s) -> the windows' spans and probabilities, as `runner predict --window`.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no telemetry calls

import gradio as gr  # noqa: E402

from demo.service import (  # noqa: E402
    CheckpointInfo,
    Classification,
    DemoError,
    DemoService,
    Limits,
    default_checkpoint,
    make_examples,
)
from demo.timeline import Timeline, make_timeline  # noqa: E402

log = logging.getLogger(__name__)

TOP_K = 5
NO_COMPARE = ""
INTRO = ("### V-JEPA 2 checkpoint demo\nPick a checkpoint trained with `runner`, then upload a video "
         "(mp4, mov, avi, mkv, webm and the other formats cameras save), record one with the webcam, or pick an "
         "example clip, and press Classify. "
         "For an untrimmed video, the *Long video* tab classifies overlapping windows and draws a timeline.")


def build_demo(checkpoints_dir: Path, *, warehouse: Path | None = None, limits: Limits | None = None,
               examples_dir: Path | None = None, device: str = "auto", decoder: str = "auto",
               engine: str | None = None) -> gr.Blocks:
    """The app, not launched. Example clips are generated into `examples_dir` (default: a temp folder)."""
    service = DemoService(Path(checkpoints_dir), warehouse=warehouse, limits=limits or Limits(), device=device,
                          decoder=decoder, engine=engine)
    examples = make_examples(examples_dir or _temp_examples_dir())
    infos = service.checkpoints()
    choices, picked = _choices(infos), default_checkpoint(infos)
    with gr.Blocks(title="vjepa-lab demo", analytics_enabled=False) as demo:
        gr.Markdown(INTRO)
        with gr.Row():
            checkpoint = gr.Dropdown(choices, value=picked.name if picked else None, label="Checkpoint",
                                     allow_custom_value=True, scale=4,
                                     info="strategy · base model · classes · test accuracy · date · folder. "
                                          "Newest first; picked to start: the best on validation.")
            compare = gr.Dropdown([("(none)", NO_COMPARE), *choices], value=NO_COMPARE,
                                  label="Compare with (optional)", allow_custom_value=True, scale=3)
            refresh = gr.Button("Refresh list", scale=1)
        with gr.Tab("Clip"), gr.Row():
            with gr.Column():
                video = gr.Video(sources=["upload", "webcam"], label="Video")
                gr.Examples([[str(path)] for path in examples], inputs=[video], label="Example clips (synthetic)",
                            example_labels=[path.parent.name for path in examples])
                run = gr.Button("Classify", variant="primary")
            with gr.Column():
                labels = gr.Label(num_top_classes=TOP_K, label="Prediction")
                latency = gr.Markdown()
                strip = gr.Image(label="Frames the model saw (sampled, resized, centre-cropped)", type="numpy",
                                 format="png", interactive=False)
            with gr.Column():
                compare_labels = gr.Label(num_top_classes=TOP_K, label="Comparison checkpoint")
                compare_latency = gr.Markdown()
        long_tab = _long_video_tab()
        api_out = gr.JSON(visible=False)
        api_trigger = gr.Button(visible=False)
        timeline_trigger = gr.Button(visible=False)

        refresh.click(functools.partial(_refreshed, service), outputs=[checkpoint, compare], api_visibility="private")
        run.click(_ui_errors(functools.partial(classify_view, service)), inputs=[checkpoint, compare, video],
                  outputs=[labels, latency, strip, compare_labels, compare_latency], api_name="classify_view",
                  api_visibility="undocumented")
        api_trigger.click(_ui_errors(functools.partial(classify_api, service)), inputs=[checkpoint, video],
                          outputs=[api_out], api_name="classify")
        _wire_long_video(service, checkpoint, long_tab)
        timeline_trigger.click(_ui_errors(functools.partial(timeline_api, service)),
                               inputs=[checkpoint, long_tab["video"], long_tab["window"], long_tab["stride"]],
                               outputs=[api_out], api_name="timeline")
    demo.service = service  # type: ignore[attr-defined]  # for tests and callers that want the cache
    return demo


def classify_api(service: DemoService, checkpoint: str, video: str | None) -> dict[str, float]:
    """The `/classify` endpoint: {label: probability} for every label of the checkpoint."""
    return service.classify(checkpoint, video).probs


def classify_view(service: DemoService, checkpoint: str, compare: str | None, video: str | None
                  ) -> tuple[dict[str, float], str, Any, dict[str, float] | None, str]:
    result = service.classify(checkpoint, video)
    if not compare:
        return result.probs, latency_text(result), result.strip, None, ""
    other = service.classify(compare, video)
    return result.probs, latency_text(result), result.strip, other.probs, latency_text(other)


def _long_video_tab() -> dict[str, Any]:
    """The long-video tab's components, by name."""
    with gr.Tab("Long video"):
        with gr.Row():
            with gr.Column(scale=2):
                video = gr.Video(sources=["upload"], label="Untrimmed video")
            with gr.Column(scale=1):
                window = gr.Number(2.0, label="Window (seconds)", minimum=0)
                stride = gr.Number(1.0, label="Stride (seconds)", minimum=0)
                run = gr.Button("Classify windows", variant="primary")
        summary = gr.Markdown()
        # No fixed height: the plot sizes itself around its legend (at 320 px the legend's names were cut off).
        chart = gr.LinePlot(x="time", y="probability", color="label", x_title="time (s, window centre)",
                            y_title="probability", color_title="class", y_lim=[0, 1],
                            label="Class probability over time")
        moment = gr.Slider(0, 1, value=0, step=0.1, label="Moment (s): the frames the model saw in the window "
                           "centred nearest to it")
        moment_caption = gr.Markdown()
        strip = gr.Image(label="Frames of that window (sampled, resized, centre-cropped)", type="numpy", format="png",
                         interactive=False)
        table = gr.Dataframe(label="Per window", interactive=False)
        download = gr.File(label="Per-window table (CSV: start, end, top labels, every label's probability)")
        state = gr.State()
    return {"video": video, "window": window, "stride": stride, "run": run, "summary": summary, "chart": chart,
            "moment": moment, "moment_caption": moment_caption, "strip": strip, "table": table,
            "download": download, "state": state}


def _wire_long_video(service: DemoService, checkpoint: gr.Dropdown, tab: dict[str, Any]) -> None:
    tab["run"].click(_ui_errors(functools.partial(timeline_view, service)),
                     inputs=[checkpoint, tab["video"], tab["window"], tab["stride"]],
                     outputs=[tab[k] for k in ("chart", "summary", "moment", "moment_caption", "strip", "table",
                                               "download", "state")],
                     api_name="timeline_view", api_visibility="undocumented")
    tab["moment"].release(_ui_errors(moment_view), inputs=[tab["state"], tab["moment"]],
                          outputs=[tab["strip"], tab["moment_caption"]], api_name="moment",
                          api_visibility="undocumented")


def timeline_api(service: DemoService, checkpoint: str, video: str | None, window: float | None,
                 stride: float | None) -> dict[str, Any]:
    """The `/timeline` endpoint: every window's span and probabilities."""
    return make_timeline(service, checkpoint, video, window=window, stride=stride).api()


def timeline_view(service: DemoService, checkpoint: str, video: str | None, window: float | None,
                  stride: float | None) -> tuple[Any, ...]:
    timeline = make_timeline(service, checkpoint, video, window=window, stride=stride)
    info = timeline.video
    summary = (f"**{checkpoint}** — {len(timeline.predictions)} windows of {timeline.window:g} s every "
               f"{timeline.stride:g} s over {timeline.duration:.1f} s ({info.num_frames} frames, "
               f"{info.width}x{info.height}, {info.fps:.1f} fps)")
    strip, caption = timeline.moment(0.0)
    slider = gr.Slider(minimum=0, maximum=round(timeline.duration, 1), value=0)
    csv_file = timeline.write_csv(Path(tempfile.mkdtemp(prefix="vjepa-timeline-")))
    return timeline.chart_frame(), summary, slider, caption, strip, timeline.table(), str(csv_file), timeline


def moment_view(timeline: Timeline | None, seconds: float) -> tuple[Any, str]:
    if timeline is None:
        raise DemoError("classify the windows of a video first")
    return timeline.moment(float(seconds))


def latency_text(result: Classification) -> str:
    parts = [f"{name} {ms:.1f} ms" for name, ms in result.timings_ms.items()]
    total = sum(ms for name, ms in result.timings_ms.items() if name != "load")
    info = result.video
    return (f"**{result.checkpoint}** — {total:.0f} ms: " + " · ".join(parts)
            + f"  \nvideo: {info.num_frames} frames, {info.width}x{info.height}, {info.fps:.1f} fps")


def _ui_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """DemoError -> gr.Error (its one line, shown in the UI and raised in API clients); keep serving."""

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except DemoError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        except Exception as exc:  # anything else is our bug, but one bad request must not look like a crash
            log.exception("classification failed")
            raise gr.Error(f"classification failed: {type(exc).__name__}: {exc}".splitlines()[0]) from exc

    return wrapper


def _choices(infos: list[CheckpointInfo]) -> list[tuple[str, str]]:
    return [(info.describe(), info.name) for info in infos]


def _refreshed(service: DemoService) -> tuple[Any, Any]:
    choices = _choices(service.checkpoints())
    return gr.Dropdown(choices=choices), gr.Dropdown(choices=[("(none)", NO_COMPARE), *choices])


def _temp_examples_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="vjepa-demo-examples-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder / "clips"
