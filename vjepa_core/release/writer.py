"""`release_run(request)`: a run's checkpoint and warehouse rows -> a folder the world's tools open.

Every check that can fail on bad input runs before anything is written (a `UserError`, one line, no file). The
folder is then filled under a temporary name and renamed into place, as checkpoints are, so that a full disk
or a crash leaves nothing; before the rename, plain transformers loads it and its logits on a fixed clip must
match vjepa-lab's own model (`FP32_TOLERANCE`). With `space`, OUT is a Space holding the model folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vjepa_core import __version__
from vjepa_core.errors import UserError
from vjepa_core.inference.engines import AUTO, space_choices
from vjepa_core.inference.views import validation_evidence
from vjepa_core.models.vjepa21 import is_vjepa21
from vjepa_core.paths import checkpoint_results, checkpoints_dir, engines_dir
from vjepa_core.release.adapter import AdapterForm, check_adapter_form, load_adapter_form, write_adapter_form
from vjepa_core.release.card import CONFUSION_PNG, Released, card_data, model_card
from vjepa_core.release.command import release_command
from vjepa_core.release.evidence import Evidence, read_evidence
from vjepa_core.release.figures import write_confusion_png
from vjepa_core.release.hub_processor import write_video_processor
from vjepa_core.release.model import (
    RELEASE_DTYPES,
    check_releasable,
    load_plain,
    logits,
    merge_lora,
    probe_clip,
    release_config,
    save_model,
)
from vjepa_core.release.reading import EVALUATION_KEYS, RELEASE_FILE, RELEASE_FORMAT
from vjepa_core.release.space import MODEL_DIR, pick_examples, write_space
from vjepa_core.release.space_engine import SpaceEngine, prepare_space_engine
from vjepa_core.store.atomic import staged_dir
from vjepa_core.store.checkpoint import MANIFEST, LoadedCheckpoint, load_checkpoint

FP32_TOLERANCE = 1e-4
ELSEWHERE = "choose an OUT folder on another disk"


class ReleaseCheckFailed(RuntimeError):
    """The folder written does not reproduce vjepa-lab's model: a bug, never bad input."""


@dataclass(frozen=True)
class ReleaseRequest:
    run_id: str
    out: Path
    warehouse: Path
    results: Path | None = None  # where to look for the checkpoint if the run's recorded path is gone
    dtype: str = "fp32"
    adapter_only: bool = False
    space: bool = False
    force: bool = False
    engine: str = AUTO  # the Space's engine (`release.space_engine`): one of `engines.space_choices()`
    progress: bool = True  # a long engine preparation shows its steps on stderr


@dataclass(frozen=True)
class ReleaseReport:
    out: Path
    run_id: str
    form: str  # "merged" | "adapter"
    dtype: str
    max_logit_delta: float
    bytes: int
    files: list[str]
    examples: int
    space_engine: SpaceEngine | None = None


def release_run(request: ReleaseRequest, *, say: Callable[[str], None] = lambda _: None) -> ReleaseReport:
    """Write the release of `request.run_id` to `request.out`: the model folder (`config.json`, the weights or the
    adapter files, the processor as remote code, `release.json`, the model card `README.md`, its confusion
    matrix), or with `space` a Space holding it as `model/` with the Space's engine when one keeps the answers."""
    check_request(request)
    evidence = read_evidence(request.warehouse, request.run_id)
    folder = checkpoint_folder(evidence.run, request.results)
    say(f"loading checkpoint {folder}")
    loaded = load_checkpoint(folder)
    check_releasable(loaded)
    if request.adapter_only:
        check_adapter_form(loaded)
    with staged_dir(request.out, elsewhere=ELSEWHERE) as staging:
        model_dir = staging / MODEL_DIR if request.space else staging
        model_dir.mkdir(exist_ok=True)
        form, delta = _write_model(model_dir, loaded, request, say=say)
        released = _released(evidence, loaded, request, form=form, delta=delta)
        say("writing the model card")
        _write_card(model_dir, evidence, released)
        _write_release_file(model_dir, loaded, request, delta=delta)
        examples = pick_examples(evidence.predictions) if request.space else []
        engine = None
        if request.space:
            say("preparing the Space's engine (export, int8 quantization, check against fp32)")
            engine = prepare_space_engine(model_dir, choice=request.engine,
                                          cache_root=engines_dir(checkpoint_results(folder)),
                                          evidence=validation_evidence(evidence.run_id, request.warehouse,
                                                                       loaded.manifest["preprocessing"]),
                                          progress=request.progress)
            _write_space(staging, evidence, released, examples, engine)
        for path in staging.rglob("*"):
            if path.is_file():
                path.chmod(0o644)  # safetensors writes 0600; a release is for sharing
    files = sorted(str(path.relative_to(request.out)) for path in request.out.rglob("*") if path.is_file())
    size = sum((request.out / name).stat().st_size for name in files)
    return ReleaseReport(request.out, evidence.run_id, "adapter" if request.adapter_only else "merged",
                         request.dtype, delta, size, files, len(examples), engine)


def check_request(request: ReleaseRequest) -> None:
    """Usage errors found without reading anything big: dtype, combination, the state of OUT."""
    if request.dtype not in RELEASE_DTYPES:
        raise UserError(f"--dtype: expected one of {', '.join(RELEASE_DTYPES)}, got {request.dtype!r}")
    if request.engine not in space_choices():
        raise UserError(f"--engine: expected one of {', '.join(space_choices())} (engines a plain Space runs), got "
                        f"{request.engine!r}")
    if request.engine != AUTO and not request.space:
        raise UserError("--engine chooses the Space's engine: add --space (a model folder is run by its users' "
                        "own code)")
    if request.space and request.adapter_only:
        raise UserError("--space carries the whole model so that the app runs with no download: release the "
                        "Space without --adapter-only (and the adapter in a folder of its own)")
    out = request.out
    if out.exists() and not out.is_dir():
        raise UserError(f"OUT {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not request.force:
            raise UserError(f"OUT {out} is not empty: choose a new or empty folder, or pass --force to replace "
                            f"an earlier release there")
        if not is_release(out):
            raise UserError(f"OUT {out} is not empty and holds no earlier release ({RELEASE_FILE}): --force only "
                            f"replaces a release folder; choose a new or empty folder")


def is_release(folder: Path) -> bool:
    return (folder / RELEASE_FILE).is_file() or (folder / MODEL_DIR / RELEASE_FILE).is_file()


def checkpoint_folder(run: dict[str, Any], results: Path | None) -> Path:
    """The run's checkpoint: its recorded path, else `<results>/checkpoints/<run_id>`."""
    candidates = [Path(run["checkpoint_path"])] if run.get("checkpoint_path") else []
    if results is not None:
        candidates.append(checkpoints_dir(results) / run["run_id"])
    for candidate in candidates:
        if (candidate / MANIFEST).is_file():
            return candidate
    where = " or ".join(str(c) for c in candidates) or "no checkpoint path recorded"
    raise UserError(f"run {run['run_id']} has no checkpoint ({where}): was it deleted? pass --results for "
                    f"another results folder, or train it again with --force")


def _write_model(folder: Path, loaded: LoadedCheckpoint, request: ReleaseRequest, *,
                 say: Callable[[str], None]) -> tuple[AdapterForm | None, float]:
    """The weights, config and processor; returns the adapter form (None: merged) and the checked max |Δlogit|."""
    pre = loaded.manifest["preprocessing"]
    config = release_config(loaded.model, pre)
    # A short clip (two tubelets) is enough to compare weights; a full one at ViT-L scale costs seconds.
    probe = probe_clip(config, min(int(pre["frames_per_clip"]), 2 * config.tubelet_size))
    reference = logits(loaded.model, probe)
    form: AdapterForm | None = None
    if request.adapter_only:
        say("writing the adapter")
        form = write_adapter_form(folder, loaded, config=config, dtype=request.dtype)
        say("checking the folder with transformers + PEFT")
        plain = load_adapter_form(folder, form.base.path_in(folder))
    else:
        say(f"writing model.safetensors ({request.dtype})")
        model = merge_lora(loaded.model)
        model.config = config
        save_model(model, folder, dtype=request.dtype)
        say("checking the folder with plain transformers")
        plain = load_plain(folder)
    delta = float((logits(plain, probe) - reference).abs().max())
    del plain
    if not torch.isfinite(torch.tensor(delta)) or (request.dtype == "fp32" and delta > FP32_TOLERANCE):
        raise ReleaseCheckFailed(f"the released folder does not reproduce run {loaded.manifest['run_id']}: "
                                 f"max |Δlogit| = {delta:.3g} (fp32 tolerance {FP32_TOLERANCE:g})")
    write_video_processor(folder, pre)
    return form, delta


def _released(evidence: Evidence, loaded: LoadedCheckpoint, request: ReleaseRequest, *, form: AdapterForm | None,
              delta: float) -> Released:
    folder_name = f"{request.out.name}/{MODEL_DIR}" if request.space else request.out.name
    command = release_command(evidence.run_id, str(request.out), dtype=request.dtype,
                              adapter_only=request.adapter_only, space=request.space)
    return Released(labels=loaded.labels, preprocessing=loaded.manifest["preprocessing"], dtype=request.dtype,
                    folder_name=folder_name, release_command=command,
                    max_logit_delta=delta, adapter_base=form.base if form else None,
                    carries_pooler=bool(form and form.carries_pooler), synthetic_data=is_synthetic(evidence.run),
                    vjepa21=is_vjepa21(loaded.model.config))


def is_synthetic(run: dict[str, Any]) -> bool:
    """Trained on vjepa-lab's synthetic videos: the built-in set, or a folder `make-synthetic` wrote."""
    if run["spec"].get("data") == "synthetic":
        return True
    path = run.get("dataset_path")
    return bool(path) and (Path(path) / "synthetic.json").is_file()


def _write_card(folder: Path, evidence: Evidence, released: Released) -> None:
    write_confusion_png(folder / CONFUSION_PNG, evidence.confusion, released.labels,
                        title=f"run {evidence.run_id[:8]}: test confusion (counts)")
    model_card(evidence, released).save(folder / "README.md")


def _write_release_file(folder: Path, loaded: LoadedCheckpoint, request: ReleaseRequest, *, delta: float) -> None:
    """`release.json`: what the folder is and how the run sampled frames (the Space app reads it)."""
    pre = loaded.manifest["preprocessing"]
    evaluation = {key: pre[key] for key in EVALUATION_KEYS}
    record = {"format": RELEASE_FORMAT, "run_id": loaded.manifest["run_id"],
              "form": "adapter" if request.adapter_only else "merged", "dtype": request.dtype,
              "evaluation": {**evaluation, "clip": "centred in equal parts of the video (eval_clip_indices)"},
              "max_logit_delta": delta, "released_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "vjepa_lab_version": __version__}
    (folder / RELEASE_FILE).write_text(json.dumps(record, indent=2) + "\n")


def _write_space(folder: Path, evidence: Evidence, released: Released, examples: list[Path],
                 engine: SpaceEngine) -> None:
    labels = ", ".join(released.labels)
    version = "V-JEPA 2.1" if released.vjepa21 else "V-JEPA 2"
    title = f"{version} {evidence.spec['strategy']} classifier ({evidence.run_id[:8]})"
    description = (f"Classifies a video into one of {len(released.labels)} classes ({labels}) with a {version} "
                   f"model fine-tuned by vjepa-lab run {evidence.run_id} (strategy {evidence.spec['strategy']}, "
                   f"test accuracy {100 * float(evidence.run['test_acc']):.1f}% on its test split).")
    data = card_data(evidence, released)
    write_space(folder, title=title, description=description, examples=examples, tags=data.tags or [],
                hub_models=[data.base_model] if isinstance(data.base_model, str) else [], engine=engine)
