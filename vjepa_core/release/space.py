"""The Space folder: a Gradio app that runs a released model anywhere, with no vjepa-lab code.

Beside the model (`model/`), `write_space` writes the app (`space_template/`: transformers, torchcodec and
gradio, frames sampled as the run was evaluated, the classifier under the model's engine when there is one),
its requirements (what those files import, by `release.requirements`, at the versions it was checked with),
the Space card, its upload limits (the demo's defaults) and a few of the run's test videos as examples.
"""

from __future__ import annotations

import json
import shutil
import sys
from importlib import metadata, resources
from pathlib import Path

import pandas as pd
from huggingface_hub import SpaceCard, SpaceCardData

from vjepa_core.inference.engines import ENGINES
from vjepa_core.release.hub_model import MODEL_CODE, model_source
from vjepa_core.release.hub_processor import PROCESSOR_CODE, processor_source
from vjepa_core.release.reading import SPACE_MODEL_DIR
from vjepa_core.release.requirements import distributions, imports_of, pinned
from vjepa_core.release.space_engine import SpaceEngine

MODEL_DIR = SPACE_MODEL_DIR
APP = "app.py"
APP_FILES = (APP, "decoder_errors.py")  # space_template/: the app and its messages (no vjepa-lab import)
# `runner demo`'s defaults (demo/service.py Limits; a test holds them equal): the library cannot import the demo.
UPLOAD_LIMITS = {"max_mb": 200.0, "max_seconds": 120.0, "min_frames": 8}
EXAMPLES = 3


def app_sources() -> dict[str, str]:
    """{file name: source} of the app's files."""
    template = resources.files("vjepa_core.release").joinpath("space_template")
    return {name: template.joinpath(name).read_text() for name in APP_FILES}


def pick_examples(predictions: pd.DataFrame, count: int = EXAMPLES) -> list[Path]:
    """Up to `count` test videos that exist on disk, one per true class, those the run got right first."""
    chosen: list[Path] = []
    classes: set[str] = set()
    ordered = predictions.assign(wrong=~predictions["correct"].astype(bool)).sort_values(["wrong", "true_class",
                                                                                          "video"])
    for row in ordered.itertuples():
        if len(chosen) == count:
            break
        if row.true_class not in classes and Path(row.video).is_file():
            chosen.append(Path(row.video))
            classes.add(row.true_class)
    return chosen


def requirements(*, runtime: str | None = None) -> str:
    """`requirements.txt`: what the app's files and the model's processor import, with what that needs at run time,
    pinned as installed here; with `runtime`, the one package of those the app imports only to run an engine
    (openvino or onnxruntime) that runs this Space's."""
    imports = [imports_of(source) for source in [*app_sources().values(), processor_source(), model_source()]]
    imported = set().union(*(found.required | (found.optional & {runtime}) for found in imports))
    local = {Path(name).stem for name in [*APP_FILES, PROCESSOR_CODE, MODEL_CODE]}
    return "".join(f"{line}\n" for line in pinned(distributions(imported, local=local)))


def write_space(folder: Path, *, title: str, description: str, examples: list[Path], tags: list[str],
                hub_models: list[str], engine: SpaceEngine) -> None:
    """Everything of the Space but the model folder (`folder / MODEL_DIR`, with its engine), which the caller
    writes."""
    for name, source in app_sources().items():
        (folder / name).write_text(source)
    (folder / "requirements.txt").write_text(requirements(runtime=engine.runtime))
    (folder / "packages.txt").write_text("ffmpeg\n")
    settings = {"title": title, "description": description, "model": MODEL_DIR, "limits": UPLOAD_LIMITS}
    (folder / "space.json").write_text(json.dumps(settings, indent=2) + "\n")
    if examples:
        (folder / "examples").mkdir()
        for index, video in enumerate(examples):
            shutil.copyfile(video, folder / "examples" / f"{index}_{video.parent.name}_{video.name}")
    data = SpaceCardData(title=title[:60], sdk="gradio", sdk_version=metadata.version("gradio"),
                         python_version=f"{sys.version_info.major}.{sys.version_info.minor}", app_file=APP,
                         models=hub_models or None, tags=tags, emoji="🎬", colorFrom="indigo", colorTo="blue",
                         pinned=False, short_description=_short(description))
    body = (f"# {title}\n\n{description}\n\n"
            "Run it anywhere: `pip install -r requirements.txt && python app.py` (FFmpeg's libraries too: "
            "`apt-get install ffmpeg`; this Space installs them from `packages.txt`). "
            "`python app.py --help` lists the host, port and upload limits.\n\n"
            f"The model, its card (figures, recipe, limitations) and its confusion matrix are in `{MODEL_DIR}/`; "
            f"`{MODEL_DIR}/README.md` is the card.\n\n"
            "From a script: `Client(url).predict(handle_file(\"clip.mp4\"), api_name=\"/classify\")` "
            "(gradio_client) returns every label's probability.\n\n"
            f"{engine_paragraph(engine)}\n")
    SpaceCard(f"---\n{data.to_yaml()}\n---\n\n{body}").save(folder / "README.md")


def engine_paragraph(engine: SpaceEngine) -> str:
    """What runs the model, for the Space card."""
    if engine.engine is None:
        return (f"**Engine: transformers fp32.** The app runs `{MODEL_DIR}/` with transformers on the CPU; "
                f"`runner release` wrote no faster engine ({engine.reason}).")
    check = engine.check
    assert check is not None
    kept = f"; {engine.plan.describe()}" if engine.plan is not None else ""
    return (f"**Engine: `{engine.engine}`** ({ENGINES[engine.engine].summary}{kept}). The app runs the classifier "
            f"as `{MODEL_DIR}/{engine.graph}` with {engine.runtime} on the CPU, one clip per call. "
            f"Checked at release against the fp32 model: {check.describe()}; "
            f"`{MODEL_DIR}/{engine.spec}` has the figures, the input shape and the runtime's options. Without "
            f"{engine.runtime} (or without that folder) the app runs `{MODEL_DIR}/` with transformers in fp32; the "
            "page says which engine answered.")


def _short(text: str) -> str:
    first = text.split("\n")[0].strip().rstrip(".")
    return first if len(first) <= 60 else first[:57].rstrip() + "..."
