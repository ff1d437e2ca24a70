"""The model card: the warehouse's evidence about one run as a Hugging Face `ModelCard` (README.md).

In: `Evidence` (warehouse rows only) and `Released` (what the release folder holds). Out: `model_card(...)` ->
`huggingface_hub.ModelCard`, its YAML header in the Hub's conventions (model-index = the warehouse's test accuracy),
its body how to use the model, its recipe (every run option that left its default, read off the spec's fields),
how well it does and how sure that is, its place in its matrix, and how to reproduce it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from vjepa_core.analysis.verdict import Verdict
from vjepa_core.analysis.verdict_text import deployment_line, run_line
from vjepa_core.fields import command_line, shown
from vjepa_core.models import PRESETS, load_config, official
from vjepa_core.models.loading import SHIPPED_WEIGHTS
from vjepa_core.models.vjepa21 import is_vjepa21
from vjepa_core.release.adapter import POOLER_FILE, BaseReference
from vjepa_core.release.evidence import (
    AccuracyFigures,
    Evidence,
    MatrixPlace,
    accuracy_figures,
    configuration_name,
    matrix_place,
    size_label,
)
from vjepa_core.release.hub_model import MODEL_CODE, model_source
from vjepa_core.release.hub_processor import PROCESSOR_CODE, processor_source
from vjepa_core.release.requirements import distributions, imports_of, pinned
from vjepa_core.spec import RUN_DEFAULTS, RUN_OPTIONS, RunSpec
from vjepa_core.strategies import STRATEGIES, get_strategy

CONFUSION_PNG = "confusion_matrix.png"
SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class Released:
    """What the release folder holds, for the card's usage section and provenance."""

    labels: list[str]
    preprocessing: dict[str, Any]
    dtype: str
    folder_name: str
    release_command: str    # the `runner release ...` command that wrote the folder
    max_logit_delta: float  # plain transformers vs vjepa-lab's model on one clip, measured at release
    adapter_base: BaseReference | None = None  # set for the adapter-only form
    carries_pooler: bool = False
    synthetic_data: bool = False
    extra_tags: list[str] = field(default_factory=list)
    vjepa21: bool = False  # a V-JEPA 2.1 model: the folder carries its model code (`hub_model`)


def model_card(evidence: Evidence, released: Released) -> ModelCard:
    accuracy = accuracy_figures(evidence)
    place = matrix_place(evidence)
    data = card_data(evidence, released)
    sections = [_title(evidence, released, accuracy), _labels(released), _usage(released), _recipe(evidence),
                _evaluation(evidence, released, accuracy), _place(place), _reproduce(evidence, released),
                _limitations(released, accuracy, place), _provenance(evidence, released)]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")


def card_data(evidence: Evidence, released: Released) -> ModelCardData:
    run, spec = evidence.run, evidence.spec
    strategy = get_strategy(spec["strategy"])
    hub_base = _hub_id(spec["model"]) if not strategy.random_init else None
    dataset = str(run.get("dataset") or spec["data"])
    name = f"{dataset} (vjepa-lab synthetic videos)" if released.synthetic_data else dataset
    results = [EvalResult(task_type="video-classification", dataset_type=dataset, dataset_name=name,
                          dataset_split="test", metric_type="accuracy", metric_name="test accuracy",
                          metric_value=round(float(run["test_acc"]), 6))]
    if _number(run.get("test_macro_f1")):
        results.append(EvalResult(task_type="video-classification", dataset_type=dataset, dataset_name=name,
                                  dataset_split="test", metric_type="f1", metric_config="macro",
                                  metric_name="test macro-F1", metric_value=round(float(run["test_macro_f1"]), 6)))
    tags = ["video-classification", "vjepa2", "vjepa-lab", spec["strategy"]]
    if strategy.lora_scope:
        tags += ["lora", "peft"]
    if released.synthetic_data:
        tags.append("synthetic-data")
    extra: dict[str, Any] = {}
    if hub_base:
        extra["base_model_relation"] = "adapter" if released.adapter_base else "finetune"
    return ModelCardData(library_name="transformers", pipeline_tag="video-classification", base_model=hub_base,
                         tags=[*tags, *released.extra_tags], metrics=["accuracy", "f1"],
                         model_name=_name(evidence), eval_results=results, **extra)


def _name(evidence: Evidence) -> str:
    return f"vjepa2-{evidence.spec['strategy']}-{evidence.run_id[:8]}"


def _title(evidence: Evidence, released: Released, accuracy: AccuracyFigures) -> str:
    run, spec = evidence.run, evidence.spec
    form = "LoRA adapter of a " if released.adapter_base else ""
    version = "V-JEPA 2.1" if released.vjepa21 else "V-JEPA 2"
    return (f"# {_name(evidence)}\n\n"
            f"A {form}{version} video classifier for {len(released.labels)} classes, trained with "
            f"vjepa-lab run `{evidence.run_id}` (strategy `{spec['strategy']}` on {_short_base(spec)}, dataset "
            f"`{run.get('dataset')}`). Test accuracy **{_pct(accuracy.accuracy)}** on {accuracy.total} videos "
            f"(95% interval {_pct(accuracy.ci_low)} to {_pct(accuracy.ci_high)}; chance {_pct(accuracy.chance)}). "
            f"Every figure on this card comes from the vjepa-lab warehouse row of that run.")


def describe_base(model: str, *, random_init: bool = False) -> str:
    """The base model in words: a hub link, a local folder, or what a vjepa-lab preset is."""
    if random_init:
        return f"random initial weights (the architecture of {describe_base(model)}, none of its weights)"
    if model in PRESETS:
        config = load_config(model)
        shape = (f"hidden size {config.hidden_size}, {config.num_hidden_layers} layers, "
                 f"{config.crop_size} px crop, {config.num_pooler_layers}-layer pooler")
        origin = ("pretrained offline by vjepa-lab (`runner pretrain` on synthetic videos, plus a pooler trained on "
                  "a synthetic source task)" if model in SHIPPED_WEIGHTS
                  else "random weights from a fixed seed, a test stand-in, not a pretrained model")
        version = "V-JEPA 2.1" if is_vjepa21(config) else "V-JEPA 2"
        return f"the vjepa-lab preset `{model}` ({version} with ViT-L's proportions scaled down: {shape}; {origin})"
    if model in official.OFFICIAL:
        entry = official.OFFICIAL[model]
        return f"Meta's {entry.summary}, `{entry.file}` ({entry.url})"
    hub = _hub_id(model)
    if hub:
        return f"[{hub}](https://huggingface.co/{hub})"
    return f"the local model folder `{model}`"


def _short_base(spec: dict[str, Any]) -> str:
    if get_strategy(spec["strategy"]).random_init:
        return "random initial weights"
    model = spec["model"]
    return f"the vjepa-lab preset `{model}`" if model in PRESETS else describe_base(model)


def _hub_id(model: str) -> str | None:
    if model in PRESETS or Path(model).expanduser().exists() or model.count("/") != 1:
        return None
    return model


def _labels(released: Released) -> str:
    rows = "\n".join(f"| {i} | {label} |" for i, label in enumerate(released.labels))
    return f"## Labels\n\n| id | label |\n|---|---|\n{rows}"


def _usage(released: Released) -> str:
    pre = released.preprocessing
    frames, stride = int(pre["frames_per_clip"]), int(pre["frame_stride"])
    span = (frames - 1) * stride + 1
    model = f"./{released.folder_name}"
    if released.adapter_base is not None:
        intro, load = _adapter_usage(released, model)
    else:
        intro = ""
        load = ("from transformers import pipeline\n\n"
                f'pipe = pipeline("video-classification", model="{model}", trust_remote_code=True)  # or its Hub id\n'
                'print(pipe("clip.mp4", top_k=3))\n')
    own_clip = ("from torchcodec.decoders import VideoDecoder\n\n"
                'decoder = VideoDecoder("clip.mp4")\n'
                "n = decoder.metadata.num_frames\n"
                f"start = max(0, n - {span}) // 2\n"
                f"frames = decoder.get_frames_at([min(start + i * {stride}, n - 1) for i in range({frames})]).data\n"
                "print(pipe(frames, top_k=3))\n")
    clips, crops = int(pre.get("eval_clips", 1)), int(pre.get("eval_crops", 1))
    averaged = (f" (The evaluation then averaged the softmax of {clips} clip(s) x {crops} crop(s) per video; the "
                "pipeline scores one view, the centre crop of the centred clip.)" if clips * crops > 1 else "")
    code = ("" if not released.vjepa21 else f"""

**Model code.** This is a V-JEPA 2.1 model, which transformers does not carry yet: the folder brings its
modeling code (`{MODEL_CODE}`: transformers' V-JEPA 2 classes with 2.1's interleaved, interpolated RoPE,
modality embeddings and level norms; it imports only torch and transformers, read it before you trust it), and
`trust_remote_code=True` loads it. Without it, transformers builds a V-JEPA 2 model, warns about the weights it
does not use, and gives other answers. The config names the 2.1 fields as transformers' pending V-JEPA 2.1 port
does.""")
    return f"""## How to use

{intro}```python
{load}```{code}

Needs these packages, at the versions this folder was checked with (newer ones usually work), and, for video
files, FFmpeg's libraries (Debian/Ubuntu: `apt-get install ffmpeg`):

```bash
pip install {" ".join(card_packages([load, own_clip]))}
```

The folder's `video_preprocessor_config.json` is the run's evaluation preprocessing: short side resized to
{pre['resize_shortest_edge']} px, centre crop {pre['crop_size']} px, ImageNet mean/std.

**Frame sampling.** `trust_remote_code=True` loads the folder's own video processor
(`{PROCESSOR_CODE}`: transformers' `VJEPA2VideoProcessor` with its own `sample_frames`; it imports
only transformers and numpy, read it before you trust it). It takes the centred clip of {frames} frames every
{stride} frames, as the run was evaluated (a video shorter than {span} frames repeats its last frame), so the
pipeline gives the run's evaluation probabilities.{averaged} Without `trust_remote_code`, transformers loads the
built-in `VJEPA2VideoProcessor`, which spreads `config.num_frames` = {frames} frames evenly over the *whole*
video: the two agree on videos about {span} frames long; on longer ones the pipeline sees sparser frames than
the model was trained on, and it refuses videos shorter than {frames} frames. Without remote code (the lines
above without `trust_remote_code=True`), give the pipeline the evaluation's clip yourself (not with the folder's
processor, which takes whatever it is given as a whole video and would sample it again):

```python
{own_clip}```

**Phone videos.** The pipeline reads a file with PyAV, frames as stored: a video with a display rotation (filmed
with the phone upright) reaches the model on its side. torchcodec (above) and vjepa-lab read it upright, as
players show it; for such videos, give the pipeline torchcodec's frames."""


def card_packages(snippets: list[str]) -> list[str]:
    """The card's `pip install` line: what its code and the folder's processor (and 2.1 model code) import, with
    what that needs at run time (`release.requirements`), pinned as installed here."""
    imported = set().union(*(imports_of(code).required for code in [*snippets, processor_source(), model_source()]))
    return pinned(distributions(imported, local={Path(PROCESSOR_CODE).stem, Path(MODEL_CODE).stem}))


def _adapter_usage(released: Released, model: str) -> tuple[str, str]:
    """The adapter form's words and code: the base, PEFT's adapter merged into it, then the pipeline."""
    base = released.adapter_base
    assert base is not None
    where = {"bundled": 'f"{MODEL}/base"  # the base model as the run started, carried in this folder',
             "local": f'"{base.name}"  # a folder on the machine that trained it: copy it along',
             "hub": f'"{base.name}"'}[base.kind]
    pooler = (f'base.load_state_dict(load_file(f"{{MODEL}}/{POOLER_FILE}"), strict=False)  # the trained pooler\n'
              if released.carries_pooler else "")
    imports = "from safetensors.torch import load_file\n" if released.carries_pooler else ""
    carried = "head and pooler" if released.carries_pooler else "head"
    intro = f"The LoRA adapter alone (PEFT's format) with the trained {carried}, on its base model:\n\n"
    return intro, f"""from peft import PeftModel
{imports}from transformers import AutoConfig, AutoModelForVideoClassification, pipeline

MODEL = "{model}"  # this folder, or its Hub id once uploaded
BASE = {where}
base = AutoModelForVideoClassification.from_pretrained(
    BASE, config=AutoConfig.from_pretrained(MODEL), ignore_mismatched_sizes=True)
{pooler}model = PeftModel.from_pretrained(base, MODEL).merge_and_unload()
pipe = pipeline("video-classification", model=model, video_processor=MODEL, trust_remote_code=True)
print(pipe("clip.mp4", top_k=3))
"""


# The run options the recipe's worded rows state; every other option that differs from its default gets a row of
# its own (`other_options`), so that a new option cannot stay off the card.
STATED = frozenset({"strategy", "model", "data", "epochs", "lr", "schedule", "warmup_ratio", "weight_decay",
                    "batch_size", "accumulation_steps", "frames_per_clip", "frame_stride", "videos_per_class", "seed",
                    "precision", "lora_rank", "lora_alpha", "lora_dropout"})


def _recipe(evidence: Evidence) -> str:
    run, spec = evidence.run, evidence.spec
    strategy = get_strategy(spec["strategy"])
    per_class = (f"{int(spec['videos_per_class'])} per class" if spec.get("videos_per_class")
                 else f"all: {run.get('num_train')} over {run.get('num_classes')} classes")
    rows = [("strategy", f"`{spec['strategy']}`: {strategy.summary}"),
            ("base model", describe_base(spec["model"], random_init=strategy.random_init)),
            ("trainable parameters", f"{_int(run.get('trainable_params'))} of {_int(run.get('total_params'))} "
                                     "(predictor excluded)"),
            ("epochs", f"{run.get('epochs')} (weights kept from epoch {run.get('best_epoch')}, best on validation)"),
            ("learning rate", f"{spec['lr']:g} ({spec['schedule']}, warmup {spec['warmup_ratio']:g}), weight decay "
                              f"{spec['weight_decay']:g}, batch {spec['batch_size']} x {spec['accumulation_steps']}"),
            ("frames", f"{spec['frames_per_clip']} per clip, every {spec['frame_stride']} frames"),
            ("training videos", f"{per_class} of `{run.get('dataset') or spec['data']}`"),
            ("seed", str(spec["seed"])),
            ("precision, device", f"{run.get('precision')}, {run.get('device')}")]
    if strategy.lora_scope:
        rows.append(("LoRA", f"rank {spec['lora_rank']}, alpha {spec['lora_alpha']:g}, "
                             f"dropout {spec['lora_dropout']:g}"))
    rows += [(f"`{name}`", f"{value}: {_first_sentence(RUN_OPTIONS[name].help)}")
             for name, value in other_options(spec).items()]
    if run.get("train_seconds"):
        rows.append(("wall time", f"{float(run['train_seconds']):.0f} s"))
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return (f"## Training recipe\n\n| | |\n|---|---|\n{table}\n\nEvery other run option has vjepa-lab's default "
            "(Reproduce gives the command).")


def other_options(spec: dict[str, Any]) -> dict[str, str]:
    """The run options of `spec` (a warehouse row's spec) that the worded rows do not state and that differ from
    their defaults, in field order, each as the CLI writes it; an option older runs lack counts as its default."""
    values = {name: spec.get(name, default) for name, default in RUN_DEFAULTS.items() if name not in STATED}
    return {name: shown(tuple(value) if isinstance(value, list) else value) for name, value in values.items()
            if json.dumps(value) != json.dumps(RUN_DEFAULTS[name])}  # JSON: a list is a tuple


def _first_sentence(text: str) -> str:
    return re.split(r"\.\s+(?=[A-Z])", text)[0].rstrip(".")


def _evaluation(evidence: Evidence, released: Released, accuracy: AccuracyFigures) -> str:
    call = "above chance" if accuracy.p_value < 0.05 else "not distinguishable from chance"
    order = {label: i for i, label in enumerate(released.labels)}
    scores = evidence.class_metrics.sort_values("class_name", key=lambda names: names.map(order))
    rows = "\n".join(f"| {row.class_name} | {row.precision:.2f} | {row.recall:.2f} | {row.f1:.2f} | "
                     f"{int(row.support)} |" for row in scores.itertuples())
    macro = (f" Macro-F1 {float(evidence.run['test_macro_f1']):.3f}." if _number(evidence.run.get("test_macro_f1"))
             else "")
    return f"""## Evaluation (test split)

- Accuracy **{_pct(accuracy.accuracy)}** ({accuracy.correct} of {accuracy.total} test videos); 95% Wilson
  interval {_pct(accuracy.ci_low)} to {_pct(accuracy.ci_high)} (one run: the interval is over its test videos).{macro}
- Chance level {_pct(accuracy.chance)} (always answering the largest test class); one-sided exact binomial
  p = {accuracy.p_value:.2g}: {call}.

| class | precision | recall | F1 | test videos |
|---|---|---|---|---|
{rows}

![Confusion matrix on the test split]({CONFUSION_PNG})"""


def _place(place: MatrixPlace | None) -> str:
    if place is None:
        return ("## Place in its study\n\nThis run was trained alone (not in a `runner run-matrix` or `runner sweep` "
                "with other configurations), so there is nothing to compare it with here.")
    configs = place.configurations
    with_model = configs["model"].nunique() > 1
    configs = configs.assign(row=[configuration_name(row, with_model=with_model) for _, row in configs.iterrows()],
                             size=[size_label(v) for v in configs["videos_per_class"]])
    sizes = sorted(configs["size"].unique(), key=lambda s: (s == "all", int(s) if s.isdigit() else 0))
    lines = [f"| configuration | {' | '.join(f'{s} / class' for s in sizes)} |", f"|---|{'---|' * len(sizes)}"]
    crowded = False
    order = list(STRATEGIES)  # rows in the registry's order, the order of --help and the dashboard
    names = configs.sort_values("strategy", key=lambda col: col.map(order.index), kind="stable")["row"]
    for name in dict.fromkeys(names):
        cells = []
        for size in sizes:
            cell = configs[(configs["row"] == name) & (configs["size"] == size)]
            crowded |= len(cell) > 1
            cells.append(_cell(cell))
        lines.append(f"| {name} | {' | '.join(cells)} |")
    note = ("\n\nCells that hold several configurations (other learning rates, frames, ranks...) show this run's, "
            "else the chosen one, else the one with the best validation accuracy." if crowded else "")
    return (f"## Place in its study\n\nTest accuracy (validation accuracy) of every configuration of matrix "
            f"`{place.matrix_id}`, mean over seeds; ◀ marks this run's configuration, ★ the configuration chosen "
            f"on validation at its setting.\n\n" + "\n".join(lines) + note + "\n\n" + _verdict(place))


def _cell(cell: pd.DataFrame) -> str:
    if cell.empty:
        return "-"
    row = cell.sort_values(["this", "chosen", "val_acc"], ascending=False).iloc[0]
    marks = (" ◀" if row["this"] else "") + (" ★" if row["chosen"] else "")
    text = f"{_pct(row['test_acc'])} ({_pct(row['val_acc'])}){marks}"
    return f"**{text}**" if row["this"] else text


def _verdict(place: MatrixPlace) -> str:
    """What the matrix's verdict (`runner verdict`, `analysis.verdict_text.run_line`) says of this run."""
    if not place.verdicts:
        return ("The verdict compares configurations that share a setting (data size, frames, model); this run's "
                "configuration has no such rival in the matrix, so no question is asked of it.")
    said = "\n".join(f"- {run_line(verdict, place.run_id)} {deployment_line(verdict)}{_picked(verdict, place)}"
                     for verdict in place.verdicts)
    return (f"What the matrix's verdict (`runner verdict {place.matrix_id}`) says of this run; rivals are tested "
            f"against the chosen configuration on their shared test videos (exact McNemar per seed, combined over "
            f"seeds, Holm-adjusted within the question):\n\n{said}")


def _picked(verdict: Verdict, place: MatrixPlace) -> str:
    """' This run's configuration is the deployment pick.' when it is (else nothing)."""
    mine = place.run_id in set(verdict.deployment.entry.config.runs["run_id"].astype(str))
    return " This run's configuration is that deployment pick." if mine else ""


def _reproduce(evidence: Evidence, released: Released) -> str:
    train = command_line(RunSpec, evidence.spec, "runner run")
    return (f"## Reproduce\n\n```bash\n{train}\n{released.release_command}\n```\n\n"
            "The first command trains the same run (same spec, same run id); the second writes this folder.")


def _limitations(released: Released, accuracy: AccuracyFigures, place: MatrixPlace | None) -> str:
    seeds = 1 if place is None else int(place.configurations.loc[place.configurations["this"], "seeds"].iloc[0])
    items = [f"{'One seed' if seeds == 1 else f'{seeds} seeds'} of this configuration: seed-to-seed variation "
             f"{'is not measured' if seeds == 1 else 'is in the matrix table (mean over seeds)'}.",
             f"{accuracy.total} test videos: the 95% interval spans {100 * (accuracy.ci_high - accuracy.ci_low):.0f} "
             "points; differences of a few videos are noise."]
    if released.synthetic_data:
        items.append("Trained and tested on vjepa-lab's synthetic videos (moving shapes): this says nothing about "
                     "real footage.")
    if released.dtype != "fp32":
        items.append(f"Weights stored in {released.dtype}: logits differ from the fp32 model by up to "
                     f"{released.max_logit_delta:.2g} on the release check.")
    items.append("Without `trust_remote_code=True` the pipeline samples frames differently from the evaluation "
                 "(see How to use).")
    return "## Limitations\n\n" + "\n".join(f"- {item}" for item in items)


def _provenance(evidence: Evidence, released: Released) -> str:
    run = evidence.run
    versions = run.get("versions") or {}
    if isinstance(versions, str):
        versions = json.loads(versions)
    installed = ", ".join(f"{name} {version}" for name, version in versions.items())
    form = "an adapter" if released.adapter_base else "merged weights"
    finished = pd.Timestamp(run["finished_at"]).strftime("%Y-%m-%d %H:%M UTC") if run.get("finished_at") else "-"
    return (f"## Provenance\n\nRun `{evidence.run_id}` finished {finished} "
            f"(git {str(run.get('git_sha'))[:12]}; {installed}). Released as {form} in {released.dtype}; "
            f"at release, plain transformers reproduced vjepa-lab's logits on a test clip within "
            f"max |Δ| = {released.max_logit_delta:.2g}.")


def _pct(value: float) -> str:
    return f"{100 * float(value):.1f}%"


def _int(value: Any) -> str:
    return f"{int(value):,}" if _number(value) else "-"


def _number(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))
