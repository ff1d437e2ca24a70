"""Checkpoint bytes at ViT-L scale, fp32 against half precision, for the strategies whose checkpoint is the
pooler: transformers' default `VJEPA2Config` with random weights (a checkpoint's size depends on shapes and
dtype only), each frozen-encoder strategy's checkpoint saved in both. Figures: docs/benchmarks/performance.md.

    python -m benchmarks.checkpoint_size [--strategies pooler_head,lora] [--labels 174]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from transformers import VJEPA2Config, VJEPA2ForVideoClassification

from vjepa_core.models import base_fingerprint
from vjepa_core.spec import RunSpec
from vjepa_core.store.checkpoint import save_checkpoint
from vjepa_core.strategies import STRATEGIES, get_strategy

DTYPES = ("fp32", "fp16")


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure(strategies: list[str], num_labels: int, work: Path) -> list[dict[str, Any]]:
    labels = [f"class_{i}" for i in range(num_labels)]
    config = VJEPA2Config(num_labels=num_labels, id2label=dict(enumerate(labels)),
                          label2id={label: i for i, label in enumerate(labels)})
    torch.manual_seed(0)
    started = time.perf_counter()
    base = VJEPA2ForVideoClassification(config).eval()
    print(f"built a ViT-L-shaped V-JEPA 2 ({sum(p.numel() for p in base.parameters()) / 1e6:.0f} M parameters) "
          f"in {time.perf_counter() - started:.0f} s", flush=True)
    fingerprint = base_fingerprint(base)
    rows = []
    for name in strategies:
        spec = RunSpec(strategy=name, model="vitl-random")
        model = get_strategy(name).adapt(base, spec)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        sizes = {}
        for dtype in DTYPES:
            folder = save_checkpoint(work / f"{name}-{dtype}", model, spec=spec, labels=labels, base_fp=fingerprint,
                                     preprocessing={}, metrics={}, weights_dtype=dtype)
            sizes[dtype] = folder_bytes(folder)
        rows.append({"strategy": name, "trainable_params": trainable, **{f"{d}_bytes": sizes[d] for d in DTYPES},
                     "ratio": sizes["fp16"] / sizes["fp32"]})
        print(f"{name:<18} {trainable / 1e6:7.2f} M trained params: fp32 {sizes['fp32'] / 2**20:7.1f} MiB, "
              f"fp16 {sizes['fp16'] / 2**20:7.1f} MiB, ratio {rows[-1]['ratio']:.3f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    frozen = [name for name, s in STRATEGIES.items() if s.frozen_encoder and not s.lora_scope]
    parser.add_argument("--strategies", default=",".join(frozen), help="comma-separated strategy names")
    parser.add_argument("--labels", type=int, default=174, help="classes (174: Something-Something v2)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON at the end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(args.strategies.split(","), args.labels, Path(tmp))
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
