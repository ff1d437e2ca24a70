"""A Gradio app for one V-JEPA 2 video classifier, written by vjepa-lab's `runner release --space`; it imports no
vjepa-lab code. `pip install -r requirements.txt && python app.py [--host H] [--port P]` (and FFmpeg's shared
libraries, which a Hugging Face Space installs from packages.txt).

Frames are chosen as the run was evaluated (the model folder's own processor and `model/release.json`), so it
answers as `runner predict` did; the classifier (views [B, T, 3, crop, crop] -> logits [B, labels]) runs under
the engine the release wrote (`model/openvino/` for OpenVINO, `model/onnx/` for ONNX Runtime) when its runtime
imports, else transformers in fp32, and the page names which.
`Client(url).predict(handle_file("clip.mp4"), api_name="/classify")` returns {label: probability}; a bad
video gets a one-line message and the app keeps serving.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no telemetry calls

import gradio as gr  # noqa: E402
import torch  # noqa: E402
from decoder_errors import decoder_reason  # noqa: E402  (beside this file)
from torchcodec.decoders import VideoDecoder  # noqa: E402
from transformers import AutoConfig, AutoModelForVideoClassification, AutoVideoProcessor  # noqa: E402

try:
    import openvino  # noqa: E402
except ImportError:  # the app still runs, with transformers
    openvino = None
try:
    import onnxruntime  # noqa: E402
except ImportError:
    onnxruntime = None

HERE = Path(__file__).resolve().parent
MB = 1_000_000
# Those torchcodec reads frame-exact; MPEG program and transport streams (.mpg, .ts) it does not.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".webm", ".mkv", ".m4v", ".wmv", ".flv", ".3gp")
ENGINE_FILE = "engine.json"  # in the engine's folder of the model folder, when the release wrote an engine
Logits = Callable[[torch.Tensor], torch.Tensor]  # views [B, T, 3, crop, crop] -> logits [B, labels]


class BadVideo(ValueError):
    """A video this app refuses; the message is one line, shown as is."""


def engine_logits(folder: Path) -> tuple[Logits, str] | None:
    """The classifier under the engine the release wrote into `folder` and the engine's name; None without one or
    without its runtime."""
    for name, opener in (("openvino", openvino_logits), ("onnx", onnx_logits)):
        if (folder / name / ENGINE_FILE).is_file():
            return opener(folder / name, json.loads((folder / name / ENGINE_FILE).read_text()))
    return None


def one_clip_per_call(run: Callable[[Any], Any]) -> Logits:
    """Logits of views, one clip per call of `run` (numpy [1, T, 3, crop, crop] -> logits [1, labels]): int8
    activation scales are computed per call, so a clip never depends on its neighbours."""
    def logits(views: torch.Tensor) -> torch.Tensor:
        clips = views.float().contiguous().numpy()
        return torch.cat([torch.from_numpy(run(clips[i:i + 1]).copy()) for i in range(len(clips))])

    return logits


def openvino_logits(folder: Path, spec: dict[str, Any]) -> tuple[Logits, str] | None:
    if openvino is None:
        return None
    # The release's options (fp32 arithmetic: the check's), on the cores the transformers path would use.
    options = {**spec["runtime"]["options"], "INFERENCE_NUM_THREADS": torch.get_num_threads()}
    model = openvino.Core().compile_model(str(folder / spec["graph"]), "CPU", options)
    return one_clip_per_call(lambda clip: model(clip)[0]), spec["engine"]


def onnx_logits(folder: Path, spec: dict[str, Any]) -> tuple[Logits, str] | None:
    if onnxruntime is None:
        return None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the cores, as the transformers path uses them
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting between calls
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(str(folder / spec["graph"]), options, providers=["CPUExecutionProvider"])
    name = spec["input"]["name"]
    return one_clip_per_call(lambda clip: session.run(None, {name: clip})[0]), spec["engine"]


def transformers_logits(folder: Path) -> tuple[Logits, str]:
    """`folder` with transformers in its stored dtype (fp32 unless released smaller)."""
    # Subnormal floats (small models meet them) run in microcode on x86 CPUs. Flushing them to zero, as onnxruntime
    # does, leaves the logits as they were (vjepa-lab's release benchmarks hold the check).
    torch.set_flush_denormal(True)
    # trust_remote_code: a V-JEPA 2.1 folder carries its model code (modeling_vjepa_lab.py); a V-JEPA 2 one has none
    model = AutoModelForVideoClassification.from_pretrained(folder, trust_remote_code=True).eval()
    dtype = next(model.parameters()).dtype

    def logits(views: torch.Tensor) -> torch.Tensor:
        return model(pixel_values_videos=views.to(dtype)).logits.float()

    names = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
    return logits, f"transformers {names.get(dtype, str(dtype))}"


class Classifier:
    """The released model's classifier (under the engine that runs it), its video processor and the evaluation's
    sampling."""

    def __init__(self, folder: Path) -> None:
        self.logits, self.engine = engine_logits(folder) or transformers_logits(folder)
        # The folder's own processor (remote code): it knows the evaluation's clip.
        self.processor = AutoVideoProcessor.from_pretrained(folder, trust_remote_code=True)
        self.evaluation = json.loads((folder / "release.json").read_text())["evaluation"]
        config = AutoConfig.from_pretrained(folder)
        self.labels = [config.id2label[i] for i in range(config.num_labels)]

    def views(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames [T, 3, H, W] -> normalised views [crops, T, 3, crop, crop], as the run was evaluated."""
        crops = int(self.evaluation["eval_crops"])
        if crops == 1:
            return self.processor(frames, do_sample_frames=False, return_tensors="pt")["pixel_values_videos"]
        # Three crops along the long side (start, centre, end) of the resized, normalised clip.
        whole = self.processor(frames, do_sample_frames=False, do_center_crop=False,
                               return_tensors="pt")["pixel_values_videos"][0]
        size = int(self.evaluation["crop_size"])
        height, width = whole.shape[-2:]
        top, left = int((height - size) / 2), int((width - size) / 2)
        offsets = ([(0, left), (top, left), (height - size, left)] if height > width
                   else [(top, 0), (top, left), (top, width - size)])
        return torch.stack([whole[..., y:y + size, x:x + size] for y, x in offsets])

    @torch.no_grad()
    def classify(self, decoder: VideoDecoder) -> dict[str, float]:
        """{label: probability} for every label: the mean softmax over the evaluation's views."""
        ev = self.evaluation
        clips = self.processor.evaluation_clips(decoder.metadata.num_frames, int(ev["eval_clips"]))
        views = torch.cat([self.views(decoder.get_frames_at(indices).data) for indices in clips])
        probs = torch.softmax(self.logits(views), dim=-1).mean(0)
        return {label: float(p) for label, p in zip(self.labels, probs, strict=True)}


def open_video(path: str | None, limits: dict[str, float]) -> VideoDecoder:
    """A decoder for `path` if it is a readable video within the limits, else `BadVideo` (one line)."""
    if not path:
        raise BadVideo("no video: upload one, record one with the webcam, or pick an example")
    file = Path(path)
    name = file.name
    if file.suffix.lower() not in VIDEO_SUFFIXES:
        raise BadVideo(f"{name}: not a video file (accepted: {', '.join(s[1:] for s in VIDEO_SUFFIXES)})")
    size = file.stat().st_size if file.is_file() else 0
    if size == 0:
        raise BadVideo(f"{name}: empty file (0 bytes)")
    if size > limits["max_mb"] * MB:
        raise BadVideo(f"{name} is {size / MB:.1f} MB; the limit is {limits['max_mb']:g} MB")
    try:
        decoder = VideoDecoder(str(file))
    except (RuntimeError, ValueError) as error:
        raise BadVideo(f"{name}: not a readable video ({decoder_reason(error, file)})") from error
    meta = decoder.metadata
    frames = meta.num_frames or 0
    if frames < limits["min_frames"]:
        raise BadVideo(f"{name} is too short: {frames} frame(s); at least {int(limits['min_frames'])} needed")
    seconds = meta.duration_seconds or 0.0
    if seconds > limits["max_seconds"]:
        raise BadVideo(f"{name} is {seconds:.1f} s long; the limit is {limits['max_seconds']:g} s")
    return decoder


def build_app(classifier: Classifier, settings: dict[str, Any], *, examples: list[Path]) -> gr.Blocks:
    """The app, not launched: upload, webcam or example clips in; the top-k labels out."""
    limits = settings["limits"]

    def classify(path: str | None) -> dict[str, float]:
        try:
            return classifier.classify(open_video(path, limits))
        except BadVideo as error:
            raise gr.Error(str(error), print_exception=False) from error

    def top(path: str | None, k: float) -> tuple[dict[str, float], str]:
        start = time.perf_counter()
        probs = classify(path)
        latency = f"Classified in {1000 * (time.perf_counter() - start):.0f} ms with {classifier.engine}."
        return dict(sorted(probs.items(), key=lambda item: -item[1])[:int(k)]), latency

    count = len(classifier.labels)
    with gr.Blocks(title=settings["title"], analytics_enabled=False) as app:
        gr.Markdown(settings["description"])
        with gr.Row():
            with gr.Column():
                video = gr.Video(sources=["upload", "webcam"], label="Video")
                k = gr.Slider(1, count, value=min(5, count), step=1, label="Top-k labels")
                run = gr.Button("Classify", variant="primary")
                if examples:
                    gr.Examples([[str(path)] for path in examples], inputs=[video],
                                label="Example clips (from the run's test split)")
            with gr.Column():
                labels = gr.Label(num_top_classes=count, label="Prediction")
                latency = gr.Markdown(f"Engine: {classifier.engine}.")
                gr.Markdown(f"Limits: {limits['max_mb']:g} MB, {limits['max_seconds']:g} s, at least "
                            f"{int(limits['min_frames'])} frames.")
        api_out = gr.JSON(visible=False)
        api_trigger = gr.Button(visible=False)
        run.click(top, inputs=[video, k], outputs=[labels, latency], api_name="classify_top",
                  api_visibility="undocumented")
        api_trigger.click(classify, inputs=[video], outputs=[api_out], api_name="classify")
    return app


def main() -> None:
    settings = json.loads((HERE / "space.json").read_text())
    parser = argparse.ArgumentParser(description=settings["title"])
    parser.add_argument("--host", default=None, help="address to listen on (default: GRADIO_SERVER_NAME, "
                        "else 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: GRADIO_SERVER_PORT, else 7860)")
    parser.add_argument("--max-mb", type=float, default=settings["limits"]["max_mb"], help="largest upload in MB")
    parser.add_argument("--max-seconds", type=float, default=settings["limits"]["max_seconds"],
                        help="longest accepted video")
    args = parser.parse_args()
    settings["limits"].update(max_mb=args.max_mb, max_seconds=args.max_seconds)
    examples = sorted((HERE / "examples").glob("*")) if (HERE / "examples").is_dir() else []
    classifier = Classifier(HERE / settings["model"])
    print(f"engine: {classifier.engine}", flush=True)
    app = build_app(classifier, settings, examples=examples)
    # Gradio's own cap stops huge files at the door; below it, the app's clearer message applies.
    app.queue(default_concurrency_limit=1).launch(server_name=args.host, server_port=args.port,
                                                  max_file_size=int(2 * args.max_mb * MB),
                                                  allowed_paths=[str(HERE / "examples")])


if __name__ == "__main__":
    main()
