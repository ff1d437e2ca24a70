"""Every strategy trains exactly its parameter set, and frozen weights never move."""

from __future__ import annotations

import re

import pytest
import torch

from vjepa_core.models import count_parameters, load_model
from vjepa_core.spec import RunSpec, unused_options
from vjepa_core.strategies import STRATEGIES, get_strategy, register
from vjepa_core.strategies.base import ENCODER_WEIGHT, POOLER_WEIGHT, Strategy

LABELS = ["a", "b", "c"]
HIDDEN = 128  # the tiny preset's width
CLASSIFIER = HIDDEN * 3 + 3


def trainable_names(strategy: str, model: str = "tiny", **spec: object) -> tuple[torch.nn.Module, set[str]]:
    s = get_strategy(strategy)
    model = s.adapt(load_model(model, LABELS, random_init=s.random_init), RunSpec(strategy=strategy, model=model,
                                                                                 **spec))
    return model, {n for n, p in model.named_parameters() if p.requires_grad}


def lora_numel(model: torch.nn.Module, scope: str) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if ".lora_" in n and n.startswith(scope))


# The pooler's attention projections in the tiny preset: 1 self-attention layer with q/k/v/out and the
# cross-attention with q/k/v, each 128 -> 128.
POOLER_PROJ = 4 + 3


@pytest.mark.parametrize("rank", [4, 16])
def test_lora_adds_rank_times_in_plus_out_per_projection(rank: int) -> None:
    model, names = trainable_names("lora", lora_rank=rank)
    assert lora_numel(model, "pooler.") == POOLER_PROJ * rank * (HIDDEN + HIDDEN)
    assert lora_numel(model, "vjepa2.") == 0
    trainable, _ = count_parameters(model)
    assert trainable == POOLER_PROJ * rank * 2 * HIDDEN + CLASSIFIER


@pytest.mark.parametrize("preset", ["tiny", "tiny-2.1"])  # V-JEPA 2 and 2.1 (no predictor: full trains all)
def test_exact_trainable_sets(preset: str) -> None:
    for name in STRATEGIES:
        model, names = trainable_names(name, preset)
        all_names = {n for n, _ in model.named_parameters()}
        expected = {
            "head": {n for n in all_names if n.startswith("classifier.")},
            "pooler_head": {n for n in all_names if n.startswith(("pooler.", "classifier."))},
            "lora": {n for n in all_names if ".lora_" in n or n.startswith("classifier.")},
            "pooler_head_lora": {n for n in all_names if n.startswith(("pooler.", "classifier."))},
            "lora_backbone": {n for n in all_names if ".lora_" in n or n.startswith("classifier.")},
            "full": {n for n in all_names if not n.startswith("vjepa2.predictor.")},
            "scratch": {n for n in all_names if not n.startswith("vjepa2.predictor.")},
        }[name]
        assert names == expected, name
        assert not any(n.startswith("vjepa2.predictor.") for n in names), name


def test_lora_targets_are_scoped() -> None:
    model, names = trainable_names("lora_backbone")
    lora_modules = {re.sub(r"\.lora_[AB]\.default\.weight$", "", n) for n in names if ".lora_" in n}
    encoder = {m for m in lora_modules if m.startswith("vjepa2.encoder.")}
    assert {m.rsplit(".", 1)[1] for m in encoder} == {"query", "key", "value", "proj"}
    assert len(encoder) == 2 * 4  # 2 layers x 4 projections
    assert not any("predictor" in m or ".mlp." in m for m in lora_modules)
    model, names = trainable_names("lora_backbone", lora_mlp=True)
    assert any(".mlp.fc1.lora_A" in n and n.startswith("vjepa2.encoder.") for n in names)


def test_pooler_head_lora_trains_pooler_base_and_lora() -> None:
    _, names = trainable_names("pooler_head_lora")
    assert any(n.endswith("q_proj.base_layer.weight") for n in names)
    assert any(".lora_A." in n for n in names)


@pytest.mark.parametrize("preset", ["tiny", "tiny-2.1"])
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_frozen_weights_do_not_move(strategy: str, preset: str) -> None:
    model, names = trainable_names(strategy, preset)
    torch.manual_seed(0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    clips = torch.randn(2, 4, 3, 64, 64)
    model.train()
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(pixel_values_videos=clips).logits, torch.tensor([0, 1]))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved <= names
    # LoRA B starts at zero, so A only moves once B has: after 3 steps every trainable tensor moved, but for
    # V-JEPA 2.1's image path (a video never takes it) and its first three level norms (classification reads
    # the last level only).
    unread = {n for n in names if "img" in n or re.search(r"hierarchical_norms\.[012]\.", n)}
    assert moved == names - unread


def test_trainable_counts_grow_with_what_trains() -> None:
    counts = {name: count_parameters(trainable_names(name)[0])[0] for name in STRATEGIES}
    assert counts["head"] == CLASSIFIER
    assert counts["head"] < counts["lora"] < counts["lora_backbone"] < counts["pooler_head"]
    assert counts["pooler_head"] < counts["pooler_head_lora"] < counts["full"] == counts["scratch"]


def test_unused_options_are_the_ones_no_parameter_depends_on() -> None:
    unused = {name: unused_options(strategy) for name, strategy in STRATEGIES.items()}  # in RunSpec field order
    lora = ("lora_rank", "lora_alpha", "lora_dropout", "lora_mlp")
    assert unused == {"head": ("encoder_lr_scale", *lora, "pooler_layers"), "pooler_head": ("encoder_lr_scale", *lora),
                      "lora": ("encoder_lr_scale", "lora_mlp", "pooler_layers"),
                      "pooler_head_lora": ("encoder_lr_scale", "lora_mlp"),
                      "lora_backbone": ("encoder_lr_scale", "pooler_layers"), "full": lora, "scratch": lora}
    model, trainable = trainable_names("full")
    assert ENCODER_WEIGHT in dict(model.named_parameters()) and ENCODER_WEIGHT in trainable  # a real name
    assert POOLER_WEIGHT in dict(model.named_parameters()) and POOLER_WEIGHT in trainable
    # pooler_layers counts only where the pooler's own weights train: a fresh frozen pooler would be noise.
    assert {name for name, s in STRATEGIES.items() if "pooler_layers" not in unused_options(s)} == {
        name for name in STRATEGIES if POOLER_WEIGHT in trainable_names(name)[1]}
    # lora_mlp counts only where it adds adapters: the encoder's MLPs in lora_backbone.
    assert trainable_names("lora_backbone", lora_mlp=True)[1] != trainable_names("lora_backbone")[1]


def test_registry_refuses_duplicates() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(Strategy(name="head", summary="again", is_trainable=lambda n: True, frozen_encoder=True))
