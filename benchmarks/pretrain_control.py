"""What self-supervised pretraining bought the shipped `tiny-jepa`: `python -m benchmarks.pretrain_control`.

`tiny-jepa` is a pretrained encoder plus a pooler trained on a source task, and the pooler alone could explain
a good `head`. So this trains the same pooler over the random-init `tiny` encoder and compares `head`'s test
accuracy over three bases (random, random + source pooler, `tiny-jepa`), with the shipped encoder's collapse
diagnostics against its random init. Runs go to a warehouse under `--work`, for `runner compare`. Figures:
docs/benchmarks/pretraining.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors.torch import load_file

from benchmarks.build_tiny_jepa import SOURCE, source_pooler
from vjepa_core.data import make_synthetic
from vjepa_core.models.loading import load_model, preset_file
from vjepa_core.spec import ExecOptions, RunSpec
from vjepa_core.store.warehouse import Warehouse
from vjepa_core.training.experiment import Paths, run_experiment

SIZES = (10, 40)
HEAD = {"strategy": "head", "epochs": 40, "lr": 1e-3, "batch_size": 8, "seed": 0, "data": "synthetic"}


def source_pooler_on_random_encoder(work: Path, source: Path, store: Warehouse) -> Path:
    """A save_pretrained folder: the random-init tiny encoder + a pooler trained on the source task the way
    tiny-jepa's was (same recipe and seeds, the best on the source val split kept)."""
    folder = work / "tiny-source-pooler"
    if (folder / "config.json").is_file():
        return folder
    random_encoder = work / "tiny-random"
    load_model("tiny", ["unused"]).vjepa2.save_pretrained(random_encoder)
    run = source_pooler(random_encoder, source, work, store, progress=False)
    trained = load_file(Path(run.run["checkpoint_path"]) / "trained.safetensors")
    model = load_model(str(random_encoder), ["unused"])
    model.pooler.load_state_dict({k.removeprefix("pooler."): v.float() for k, v in trained.items()
                                  if k.startswith("pooler.")})
    model.save_pretrained(folder)
    print(f"source pooler over the random encoder: source test accuracy {run.run['test_acc']:.1%}", flush=True)
    return folder


def diagnostics() -> dict[str, dict[str, float]]:
    """The shipped base's collapse diagnostics against its random init (epoch 0 of its pretraining run), as
    `runner pretrain` measured them on the source set's clips (build_tiny_jepa records them in tiny-jepa.json)."""
    kept = json.loads(preset_file("tiny-jepa", ".json").read_text())["pretraining"]
    return {"tiny (random init)": {key: kept[f"initial_{key}"] for key in ("effective_rank", "embedding_std",
                                                                            "probe_acc")},
            f"tiny-jepa (epoch {kept['chosen_epoch']})": {key: kept[key] for key in ("effective_rank",
                                                                                     "embedding_std", "probe_acc")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("results/build/pretrain-control"))
    args = parser.parse_args()
    work = args.work
    store = Warehouse(work / "vjepa.duckdb")
    options = ExecOptions(progress=False, checkpoint_dtype="fp32")
    source = make_synthetic(work / "source", progress=False, **SOURCE)
    bases = {"tiny": "tiny", "tiny + source pooler": str(source_pooler_on_random_encoder(work, source, store)),
             "tiny-jepa": "tiny-jepa"}
    accuracy: dict[tuple[str, int], float] = {}
    for name, model in bases.items():
        for size in SIZES:
            run = run_experiment(RunSpec(model=model, videos_per_class=size, **HEAD), Paths(work / "results"),
                                 options)
            store.write_run(run)
            accuracy[name, size] = run.run["test_acc"]
            print(f"head on {name} at {size}/class: {run.run['test_acc']:.1%} (run {run.run['run_id']})", flush=True)
    found = diagnostics()
    print("\n| base | head, 10 / class | head, 40 / class |\n|---|---|---|")
    for name in bases:
        print(f"| {name} | " + " | ".join(f"{accuracy[name, size]:.1%}" for size in SIZES) + " |")
    print("\n| encoder | effective rank | embedding std | attentive probe (source val split) |\n|---|---|---|---|")
    for name, row in found.items():
        print(f"| {name} | {row['effective_rank']:.2f} | {row['embedding_std']:.3f} | {row['probe_acc']:.1%} |")


if __name__ == "__main__":
    main()
