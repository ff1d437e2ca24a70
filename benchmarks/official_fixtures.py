"""Regenerate the reference fixtures of Meta's V-JEPA 2 and 2.1 encoders (tests/fixtures/official/), or check them.

    python -m benchmarks.official_fixtures --vjepa2 PATH/TO/vjepa2 [--out tests/fixtures/official]
    python -m benchmarks.official_fixtures --check [--out tests/fixtures/official]

`--check` loads every fixture through vjepa-lab's loader (no Meta code) under every encoder key and prefix form
and prints the largest |ours - Meta's| per configuration and case, then how far the 2.1 tokens move with one of
2.1's changes left out: the figures docs/guides/official-checkpoints.md gives.

`PATH/TO/vjepa2` is a checkout of github.com/facebookresearch/vjepa2 that has `app/vjepa_2_1/` (the V-JEPA
2.1 release); its own dependencies (timm, einops) must be importable. This script imports Meta's encoders
from that checkout and calls them; it holds none of their code. For each small random configuration it writes

- `<name>.pt`: the weights as Meta's training writes a checkpoint (`torch.save` of a dict whose encoder
  entries carry the `module.backbone.` prefix of DistributedDataParallel around MultiSeqWrapper), loaded by
  the tests with `weights_only=True`;
- `<name>.safetensors`: the inputs [B, C, T, H, W] and the tokens Meta's forward returned for them, in fp32;
- `fixtures.json`: each configuration's constructor arguments, checkpoint key and cases.

Weights are drawn wider than Meta's init (every tensor, norms and modality embeddings too), so that a
mistake in any part moves the tokens. docs/guides/models.md says how the fixtures prove the loader.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

SEED = 20260316
BATCH = 1


@dataclass(frozen=True)
class Case:
    name: str
    frames: int  # input frames; 1 with an image patch embedding is the image path
    hierarchical: bool = False  # Meta's `return_hierarchical`: the distillation levels concatenated


@dataclass(frozen=True)
class Fixture:
    name: str
    version: str  # "2.0" or "2.1"
    key: str  # the checkpoint entry that holds the encoder
    kwargs: dict[str, Any]
    cases: tuple[Case, ...]
    notes: dict[str, str] = field(default_factory=dict)


FIXTURES = (
    Fixture("vjepa2_0", "2.0", "target_encoder",
            kwargs=dict(img_size=(48, 48), patch_size=16, num_frames=4, tubelet_size=2, embed_dim=32, depth=3,
                        num_heads=2, mlp_ratio=2.0, qkv_bias=True, use_rope=True, use_sdpa=True),
            cases=(Case("video", frames=4),),
            notes={"what": "V-JEPA 2 (src/models): RoPE with `repeat`, one final norm; head dim 16 leaves 4 "
                           "dims unrotated"}),
    Fixture("vjepa2_1_distilled", "2.1", "ema_encoder",
            kwargs=dict(img_size=(48, 48), patch_size=16, num_frames=4, tubelet_size=2, embed_dim=32, depth=12,
                        num_heads=2, mlp_ratio=2.0, qkv_bias=True, use_rope=True, use_sdpa=True,
                        img_temporal_dim_size=1, interpolate_rope=True, modality_embedding=True,
                        n_output_distillation=1),
            cases=(Case("video", frames=4), Case("image", frames=1)),
            notes={"what": "V-JEPA 2.1 as its ViT-B/L files (ema_encoder, one distillation output): interleaved "
                           "RoPE, a 3x3 grid interpolated to the 16x16 pretraining grid, video and image "
                           "modality embeddings, the image patch embedding for one frame; head dim 16 leaves 4 "
                           "dims unrotated"}),
    Fixture("vjepa2_1_levels", "2.1", "target_encoder",
            kwargs=dict(img_size=(48, 48), patch_size=16, num_frames=4, tubelet_size=2, embed_dim=36, depth=12,
                        num_heads=2, mlp_ratio=1.0, qkv_bias=True, use_rope=True, use_sdpa=True,
                        img_temporal_dim_size=1, interpolate_rope=True, modality_embedding=True,
                        n_output_distillation=4),
            cases=(Case("video", frames=4), Case("hierarchical", frames=4, hierarchical=True)),
            notes={"what": "V-JEPA 2.1 as its ViT-g/G files (target_encoder, four distillation outputs): the "
                           "hierarchical output concatenates the four level norms' tokens; head dim 18 is "
                           "rotated whole"}),
)


def import_meta(checkout: Path) -> tuple[Any, Any, Any]:
    """Meta's 2.0 and 2.1 VisionTransformer classes and MultiSeqWrapper, imported from `checkout`."""
    if not (checkout / "app" / "vjepa_2_1").is_dir():
        sys.exit(f"{checkout} has no app/vjepa_2_1: check out a vjepa2 revision with V-JEPA 2.1")
    sys.path.insert(0, str(checkout.resolve()))
    from app.vjepa_2_1.models import vision_transformer as vit_2_1
    from src.models import vision_transformer as vit_2_0
    from src.utils.wrappers import MultiSeqWrapper

    return vit_2_0.VisionTransformer, vit_2_1.VisionTransformer, MultiSeqWrapper


def widen(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Every tensor redrawn: weights N(0, 0.1), norm scales 1 + N(0, 0.1), modality embeddings N(0, 0.2)."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if name.endswith("mod_embed"):
                param.copy_(0.2 * noise)
            elif param.ndim == 1 and ("norm" in name):
                param.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * noise)
            else:
                param.copy_(0.1 * noise)


def training_checkpoint(fixture: Fixture, wrapped_state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """A dict shaped as Meta's `save_checkpoint` writes it (DDP adds `module.` to MultiSeqWrapper's keys)."""
    state = {f"module.{key}": value.clone() for key, value in wrapped_state.items()}
    return {fixture.key: state, "epoch": 1, "loss": 0.5, "batch_size": BATCH, "world_size": 1, "lr": 1e-4}


def build(fixture: Fixture, classes: tuple[Any, Any, Any], out: Path) -> dict[str, Any]:
    vit_2_0, vit_2_1, wrapper = classes
    cls = vit_2_0 if fixture.version == "2.0" else vit_2_1
    generator = torch.Generator().manual_seed(SEED + len(fixture.name))
    encoder = cls(norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), **fixture.kwargs).eval()
    widen(encoder, generator)
    torch.save(training_checkpoint(fixture, wrapper(encoder).state_dict()), out / f"{fixture.name}.pt")
    size = fixture.kwargs["img_size"]
    tensors, cases = {}, []
    for case in fixture.cases:
        source = f"input.{case.frames}"  # cases with as many frames share one input
        if source not in tensors:
            tensors[source] = torch.randn(BATCH, 3, case.frames, *size, generator=generator)
        encoder.return_hierarchical = case.hierarchical
        with torch.no_grad():
            tokens = encoder(tensors[source])
        tensors[f"{case.name}.tokens"] = tokens.contiguous()
        cases.append({"case": case.name, "input": source, "hierarchical": case.hierarchical,
                      "tokens": list(tokens.shape)})
    save_file(tensors, out / f"{fixture.name}.safetensors")
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in fixture.kwargs.items()}
    return {"version": fixture.version, "key": fixture.key, "prefix": "module.backbone.",
            "constructor": kwargs | {"layer_norm_eps": 1e-6}, "cases": cases,
            **fixture.notes}


def check(folder: Path, **changes: object) -> dict[str, dict[str, float]]:
    """Max |Δ| per configuration and case over every key and prefix form, through vjepa-lab's loader; `changes`
    (config fields, e.g. use_rope_interleave=False) are laid over each configuration first."""
    import tempfile

    from safetensors.torch import load_file

    from vjepa_core.models.official import ENCODER_KEYS, load_official
    from vjepa_core.models.vjepa21 import VJEPA21Model

    manifest = json.loads((folder / "fixtures.json").read_text())
    worst: dict[str, dict[str, float]] = {}
    for name, entry in manifest.items():
        state = torch.load(folder / f"{name}.pt", weights_only=True)[entry["key"]]
        state = {key.removeprefix(entry["prefix"]): value for key, value in state.items()}
        tensors = load_file(folder / f"{name}.safetensors")
        shape = {"num_attention_heads": entry["constructor"]["num_heads"],
                 "crop_size": entry["constructor"]["img_size"][0]}
        worst[name] = {case["case"]: 0.0 for case in entry["cases"]}
        for key in ENCODER_KEYS:
            for prefix in ("module.backbone.", "backbone.", "module.", ""):
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "checkpoint.pt"
                    torch.save({key: {prefix + k: v for k, v in state.items()}}, path)
                    config, weights = load_official(str(path), **shape, **changes)
                model = VJEPA21Model(config).eval()
                model.encoder.load_state_dict(weights)
                for case in entry["cases"]:
                    with torch.no_grad():
                        out = model.encoder(tensors[case["input"]].permute(0, 2, 1, 3, 4),
                                            return_hierarchical=case["hierarchical"])
                    tokens = out.hierarchical_hidden_state if case["hierarchical"] else out.last_hidden_state
                    delta = float((tokens - tensors[f"{case['case']}.tokens"]).abs().max())
                    worst[name][case["case"]] = max(worst[name][case["case"]], delta)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vjepa2", type=Path, help="a facebookresearch/vjepa2 checkout with 2.1")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/official"))
    parser.add_argument("--check", action="store_true", help="print vjepa-lab's max |Δ| against the fixtures")
    args = parser.parse_args()
    if args.check:
        for name, cases in check(args.out).items():
            print(name, {case: f"{delta:.3g}" for case, delta in cases.items()})
        for change in ({"use_rope_interleave": False}, {"interpolate_rope": False}):
            moved = check(args.out, **change)
            print(f"2.1 without {change}:", {name: {case: f"{delta:.3g}" for case, delta in cases.items()}
                                              for name, cases in moved.items() if name.startswith("vjepa2_1")})
        return
    if args.vjepa2 is None:
        parser.error("--vjepa2 is required to regenerate the fixtures")
    torch.manual_seed(SEED)
    classes = import_meta(args.vjepa2)
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = {fixture.name: build(fixture, classes, args.out) for fixture in FIXTURES}
    (args.out / "fixtures.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for name, entry in manifest.items():
        print(name, [(case["case"], case["tokens"]) for case in entry["cases"]])


if __name__ == "__main__":
    main()
