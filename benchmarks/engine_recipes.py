"""Which `openvino-int8` recipe is fastest at the same answers? The recipes side by side in one process.

`python -m benchmarks.engine_recipes MODEL [--groups 32,128] [--rounds 4] [--clips 4] [--json]`

MODEL is anything `--model` takes (a model folder, a preset). Each recipe is the classifier part converted to
OpenVINO, its encoder's weights in int8 as `openvino-int8` compresses them (no blocks kept fp32, no check), run
with the plugin's activations quantized at run time in groups of G inputs (`DYNAMIC_QUANTIZATION_GROUP_SIZE`);
the rotary embedding either as transformers computes it (`rotary=model`) or as fixed tables (`rotary=tables`,
what the engine exports: `vjepa_core/inference/engines/rope.py`). Timing: one clip at a time, the rounds
interleaved (each round times fp32 eager and then every recipe once; the median per recipe), after one warm-up
call each. Printed per recipe: ms per clip, the ratio to fp32 eager, the largest |probability difference| from
fp32 over `--clips` synthetic clips, and the five op types that took most of the time (OpenVINO's own counters).
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import time
from typing import Any

import torch

from vjepa_core.inference.engines.base import threads
from vjepa_core.inference.engines.check import run_batched, synthetic_clips
from vjepa_core.inference.engines.openvino import _converted, compress
from vjepa_core.inference.engines.parts import model_part
from vjepa_core.inference.engines.prepare import example_clips
from vjepa_core.inference.engines.rope import fixed_rope
from vjepa_core.models import load_model

LABELS = [f"class_{index}" for index in range(6)]


def recipes(part: torch.nn.Module, frames: int, crop: int, groups: list[int]) -> dict[str, Any]:
    """Each recipe's compiled OpenVINO model, by name."""
    import openvino as ov

    example = example_clips(frames, crop)
    with torch.no_grad():
        plain = compress(_converted(part, example))
        with fixed_rope(part, example):
            tabled = compress(_converted(part, example))
    compiled = {}
    for rotary, model in (("model", plain), ("tables", tabled)):
        for group in groups:
            config = {"INFERENCE_NUM_THREADS": threads(), "INFERENCE_PRECISION_HINT": "f32",
                      "PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": "YES", "DYNAMIC_QUANTIZATION_GROUP_SIZE": str(group)}
            compiled[f"rotary={rotary} group={group}"] = ov.Core().compile_model(model, "CPU", config)
    return compiled


def measure(part: torch.nn.Module, compiled: dict[str, Any], clips: torch.Tensor, rounds: int) -> list[dict[str, Any]]:
    with torch.no_grad():
        reference = torch.softmax(run_batched(part, clips, 1), -1)
    requests = {name: model.create_infer_request() for name, model in compiled.items()}
    answers = {name: torch.softmax(run_batched(lambda x, r=request: torch.from_numpy(r.infer([x.numpy()])[0].copy()),
                                               clips, 1), -1) for name, request in requests.items()}
    clip = clips[:1]
    times: dict[str, list[float]] = collections.defaultdict(list)
    for _ in range(rounds):
        start = time.perf_counter()
        with torch.no_grad():
            part(clip)
        times["fp32 eager"].append(time.perf_counter() - start)
        for name, request in requests.items():
            start = time.perf_counter()
            request.infer([clip.numpy()])
            times[name].append(time.perf_counter() - start)
    eager = statistics.median(times["fp32 eager"])
    rows = [{"recipe": "fp32 eager", "ms_per_clip": round(1000 * eager), "speedup": 1.0, "max_prob_diff": 0.0}]
    for name, request in requests.items():
        spent: collections.Counter[str] = collections.Counter()
        for op in request.get_profiling_info():  # the last call's
            spent[op.node_type] += op.real_time.total_seconds() * 1000
        median = statistics.median(times[name])
        rows.append({"recipe": name, "ms_per_clip": round(1000 * median), "speedup": round(eager / median, 2),
                     "max_prob_diff": round(float((answers[name] - reference).abs().max()), 5),
                     "ms_by_op": {op: round(ms) for op, ms in spent.most_common(5)}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--groups", default="32,128", help="activation group sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(threads())
    model = load_model(args.model, LABELS).eval()
    part = model_part(model, "classifier")
    frames, crop = model.config.frames_per_clip, model.config.crop_size
    compiled = recipes(part, frames, crop, [int(group) for group in args.groups.split(",")])
    rows = measure(part, compiled, synthetic_clips(frames, crop, count=args.clips, seed=7), args.rounds)
    if args.json:
        print(json.dumps({"model": args.model, "threads": threads(), "rounds": args.rounds, "recipes": rows}, indent=1))
        return
    for row in rows:
        ops = ", ".join(f"{op} {ms}" for op, ms in row.get("ms_by_op", {}).items())
        print(f"{row['recipe']:<28} {row['ms_per_clip']:>7} ms/clip  {row['speedup']:.2f}x  "
              f"max |dp| {row['max_prob_diff']:.5f}  {ops}")


if __name__ == "__main__":
    main()
