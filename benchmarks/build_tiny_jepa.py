"""Rebuild the shipped `tiny-jepa` preset and time every step: `make tiny-jepa`.

An unlabelled corpus is pretrained on with `runner pretrain`, then a pooler is trained over the frozen encoder
on a labelled source task the default study does not have (as the hub checkpoints' poolers were trained on
SSv2), and encoder, predictor and pooler are exported as package data with their sha256 (what `load_model`
checks), the recipe and the step timings. The rest goes under `--work`, with a warehouse the dashboard's
Pretraining page can read. Timings: docs/benchmarks/pretraining.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from vjepa_core.data import make_synthetic
from vjepa_core.data.corpus import SOURCE_CLASSES
from vjepa_core.data.synthetic import UNLABELLED
from vjepa_core.models.loading import PRESETS, preset_file
from vjepa_core.pretrain.loop import PretrainOptions, prepare, pretrain, read_probe_set, read_videos
from vjepa_core.pretrain.spec import PretrainSpec
from vjepa_core.spec import ExecOptions, RunSpec
from vjepa_core.store.atomic import write_bytes, write_text
from vjepa_core.store.warehouse import Warehouse
from vjepa_core.training.experiment import Paths, run_experiment

NAME = "tiny-jepa"
CORPUS = {"classes": (UNLABELLED,), "videos_per_class": 600, "seed": 101, "texture": 0.5}
SOURCE = {"classes": SOURCE_CLASSES, "videos_per_class": 100, "seed": 7}
PRETRAIN = {"model": "tiny", "epochs": 12, "batch_size": 16, "lr": 2e-4, "masks": "8x0.15,2x0.7"}
POOLER = {"strategy": "pooler_head", "epochs": 60, "lr": 1e-3, "batch_size": 8}
# A fresh pooler over frozen tokens can sit on a plateau for tens of epochs (its attention starts nearly
# flat), and when it leaves depends on its seed: train a few, keep the best on the source task's val split.
POOLER_SEEDS = (0, 1, 2)


def build(work: Path, *, warehouse: Path, progress: bool = True) -> dict[str, Any]:
    """Run every step; returns the manifest written next to the weights."""
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def step(name: str, since: float) -> float:
        timings[name] = round(time.perf_counter() - since, 1)
        print(f"{name}: {timings[name]:.0f} s", flush=True)
        return time.perf_counter()

    clock = time.perf_counter()
    corpus = make_synthetic(work / "corpus", progress=progress, **CORPUS)
    clock = step("corpus", clock)
    source = make_synthetic(work / "source", progress=progress, **SOURCE)
    clock = step("source set", clock)
    spec = PretrainSpec(data=str(corpus), probe_data=str(source), **PRETRAIN)
    options = PretrainOptions(progress=progress)
    prepared = prepare(spec, videos=read_videos(str(corpus)), probe_items=read_probe_set(str(source)),
                       options=options)
    record = pretrain(prepared, work / "results", options)
    Warehouse(warehouse).write_pretrain(record.run, record.epochs)
    clock = step("pretrain", clock)
    pooler_run = source_pooler(record.directory, source, work, Warehouse(warehouse), progress=progress)
    clock = step("source pooler", clock)
    manifest = export(record.directory, Path(pooler_run.run["checkpoint_path"]),
                      pretrain_run=record.run, pooler_run=pooler_run.run)
    step("export", clock)
    manifest["timings_seconds"] = {**timings, "total": round(time.perf_counter() - started, 1)}
    write_text(preset_file(NAME, ".json"), json.dumps(manifest, indent=1, default=str) + "\n")
    print(f"total: {manifest['timings_seconds']['total'] / 60:.1f} min", flush=True)
    return manifest


def source_pooler(pretrained: Path, source: Path, work: Path, store: Warehouse, *, progress: bool) -> Any:
    """`pooler_head` on the source task over the frozen pretrained encoder, one run per seed of
    POOLER_SEEDS; the one with the best source val accuracy (never a test score) is kept."""
    runs = []
    for seed in POOLER_SEEDS:
        spec = RunSpec(model=str(pretrained), data=str(source), seed=seed, **POOLER)
        run = run_experiment(spec, Paths(work / "results"), ExecOptions(progress=progress, checkpoint_dtype="fp32"))
        store.write_run(run)
        print(f"source pooler, seed {seed}: val {run.run['best_val_acc']:.1%}, test {run.run['test_acc']:.1%}",
              flush=True)
        runs.append(run)
    return max(runs, key=lambda run: (run.run["best_val_acc"], -run.run["seed"]))


def export(pretrained: Path, checkpoint: Path, *, pretrain_run: dict[str, Any],
           pooler_run: dict[str, Any]) -> dict[str, Any]:
    """Encoder + predictor of the pretrained folder and the trained pooler, as one safetensors file."""
    weights = {f"vjepa2.{key}": value for key, value in load_file(pretrained / "model.safetensors").items()}
    trained = load_file(checkpoint / "trained.safetensors")
    weights.update({key: value.float() for key, value in trained.items() if key.startswith("pooler.")})
    weights = {key: value.contiguous() for key, value in sorted(weights.items())}
    data = save(weights, metadata={"format": "vjepa-lab preset", "name": NAME})
    write_bytes(preset_file(NAME, ".safetensors"), data)
    keep = ("pretrain_id", "epochs", "chosen_epoch", "chosen_by", "final_loss", "probe_acc", "effective_rank",
            "embedding_std", "initial_probe_acc", "initial_effective_rank", "initial_embedding_std", "masked_ratio",
            "num_videos", "train_seconds", "spec")
    return {"name": NAME, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
            "architecture": PRESETS[NAME], "parameters": sum(v.numel() for v in weights.values()),
            "recipe": {"corpus": {**CORPUS, "classes": list(CORPUS["classes"])},
                       "source": {**SOURCE, "classes": list(SOURCE["classes"])},
                       "pretrain": PRETRAIN, "pooler": {**POOLER, "seeds": list(POOLER_SEEDS)}},
            "pretraining": {key: pretrain_run.get(key) for key in keep},
            "source_pooler": {key: pooler_run.get(key) for key in ("run_id", "seed", "test_acc", "best_val_acc",
                                                                    "best_epoch", "train_seconds")},
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("results/build/tiny-jepa"),
                        help="Folder for the corpus, the source set, the pretraining run and its warehouse.")
    parser.add_argument("--warehouse", type=Path, default=None, help="Warehouse for the runs (default: in --work).")
    parser.add_argument("--quiet", action="store_true", help="No progress bars.")
    args = parser.parse_args()
    build(args.work, warehouse=args.warehouse or args.work / "vjepa.duckdb", progress=not args.quiet)


if __name__ == "__main__":
    main()
