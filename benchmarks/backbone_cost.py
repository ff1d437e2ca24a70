"""What one clip costs on each backbone, measured on random weights of its shape (docs/guides/models.md).

    python -m benchmarks.backbone_cost tiny tiny-2.1 small vjepa2-vitl-256 \
        vjepa2_1_vit_base_384 vjepa2_1_vit_large_384 [--frames 16] [--shape-only vjepa2_1_vit_giant_384 ...]

Each model runs in a process of its own (its peak memory is its own): it builds the model with random weights
(`load_model(..., random_init=True)`: a preset, a V-JEPA 2.1 name's architecture, or `vjepa2-vitl-256`, the
architecture of facebook/vjepa2-vitl-fpc64-256, transformers' default VJEPA2Config), encodes one clip of
`--frames` frames at its crop (fp32, eager, batch 1, after one clip of warm-up), writes the tokens into the real
token cache and prints one JSON line: tokens per clip, the cache entry's MiB, the seconds of the timed clip, the
process's peak RSS, the encoder's parameters. `--shape-only` models are built with one block (tokens and cache
size do not depend on depth; parameters are counted at full depth on the meta device): no time, no memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

VITL_256 = "vjepa2-vitl-256"  # facebook/vjepa2-vitl-fpc64-256's architecture, without its hub download


def build(name: str, *, one_block: bool) -> torch.nn.Module:
    from transformers import VJEPA2Config

    from vjepa_core.models.loading import load_config, load_model, model_class

    config = VJEPA2Config(num_labels=2) if name == VITL_256 else None
    if config is None and not one_block:
        return load_model(name, ["a", "b"], random_init=True).eval()
    config = config or load_config(name)
    config.num_labels = 2
    if one_block:
        config.num_hidden_layers = 1
        if getattr(config, "hierarchical_layers", None):
            config.hierarchical_layers = [0]
            config.num_distillation_outputs = 1
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return model_class(config)(config).eval()


def _full(name: str) -> torch.nn.Module:
    from vjepa_core.models.loading import load_config, model_class

    config = load_config(name)
    return model_class(config)(config)


def measure(name: str, frames: int, *, one_block: bool) -> dict:
    from vjepa_core.models.device import process_peak_rss
    from vjepa_core.store.cache import TokenCache

    model = build(name, one_block=one_block)
    config = model.config
    clip = torch.randn(1, frames, 3, config.crop_size, config.crop_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        if not one_block:
            model(pixel_values_videos=clip)  # warm-up: allocator, kernels
        start = time.perf_counter()
        tokens = model.vjepa2(pixel_values_videos=clip, skip_predictor=True).last_hidden_state[0]
        model.pooler(tokens[None])
        seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as root:
        video = Path(root) / "clip.mp4"
        video.write_bytes(b"stand-in: the cache keys entries by file identity")
        cache = TokenCache(Path(root) / "cache", {"model": name})
        cache.fetch({0: (video, {"view": 0})}, encode_missing=lambda tags: [(0, tokens.numpy(), {})])
        entry = next((Path(root) / "cache" / cache.group_id).glob("*.npy")).stat().st_size
    if one_block:  # the parameters of the whole depth, counted on the meta device (no memory)
        with torch.device("meta"):
            model = build(name, one_block=False) if name == VITL_256 else _full(name)
    encoder = sum(p.numel() for p in model.vjepa2.encoder.parameters())
    return {"model": name, "crop": config.crop_size, "frames": frames, "tokens_per_clip": int(tokens.shape[0]),
            "width": config.hidden_size, "cache_mib_per_view": round(entry / 2**20, 2),
            "encoder_params_m": round(encoder / 1e6, 1),
            "cpu_seconds_per_clip": None if one_block else round(seconds, 2),
            "peak_rss_gib": None if one_block else round(process_peak_rss() / 2**30, 2),
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--shape-only", nargs="*", default=[])
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process: measure this model
    parser.add_argument("--one-block", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.frames, one_block=args.one_block)), flush=True)
        return
    jobs = [(name, False) for name in args.models] + [(name, True) for name in args.shape_only]
    for name, one_block in jobs:
        command = [sys.executable, "-m", "benchmarks.backbone_cost", "--one", name, "--frames", str(args.frames)]
        done = subprocess.run(command + (["--one-block"] if one_block else []), capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"{name}: {done.stderr.strip().splitlines()[-1]}")
        print(done.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
