"""Collapse diagnostics and the per-epoch training state: numbers that mean what they say."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vjepa_core.pretrain.diagnostics import attentive_probe, effective_rank, embedding_std
from vjepa_core.pretrain.spec import PretrainSpec
from vjepa_core.pretrain.state import TrainState, load_latest_state, save_state


def test_effective_rank_counts_the_directions_features_spread_over() -> None:
    generator = torch.Generator().manual_seed(0)
    collapsed = torch.ones(50, 16) + 1e-9 * torch.randn(50, 16, generator=generator)
    line = torch.randn(50, 1, generator=generator) * torch.randn(1, 16, generator=generator)
    spread = torch.randn(500, 16, generator=generator)
    assert effective_rank(torch.ones(50, 16)) == 1.0
    assert effective_rank(line) == pytest.approx(1.0, abs=1e-4)
    assert effective_rank(collapsed) < 16
    assert 14.5 < effective_rank(spread) <= 16


def test_embedding_std_is_one_when_healthy_and_zero_when_collapsed() -> None:
    generator = torch.Generator().manual_seed(0)
    healthy = torch.randn(8, 20, 32, generator=generator)
    same = torch.randn(1, 1, 32, generator=generator).expand(8, 20, 32)
    assert embedding_std(healthy) == pytest.approx(1.0, abs=0.1)
    assert embedding_std(same) == pytest.approx(0.0, abs=1e-5)


def test_attentive_probe_finds_an_ordered_pattern_that_a_mean_cannot() -> None:
    """Classes that differ only in which token comes first: the same tokens, so the same mean."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(160) % 2
    a, b = torch.randn(2, 16, generator=generator)
    tokens = 0.3 * torch.randn(160, 8, 16, generator=generator)
    tokens[:, 0] += torch.where(labels[:, None] == 0, a, b)  # class 0: a first, b last; class 1: the reverse
    tokens[:, -1] += torch.where(labels[:, None] == 0, b, a)
    positions = torch.linspace(-1, 1, 8)[None, :, None].expand(160, 8, 1)  # what rotary positions give
    tokens = torch.cat([tokens, positions], -1)
    assert attentive_probe(tokens[:120], labels[:120], tokens[120:], labels[120:], epochs=60) > 0.9
    noise = torch.randn(160, 8, 17, generator=generator)
    assert attentive_probe(noise[:120], labels[:120], noise[120:], labels[120:], epochs=60) < 0.75


def _state(epoch: int) -> TrainState:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    history = [{"epoch": e, "loss": 1.0 / (e + 1)} for e in range(epoch + 1)]
    return TrainState(epoch=epoch, step=10 * epoch, history=history, best_epoch=epoch, online=model.state_dict(),
                      target=model.state_dict(), optimizer=optimizer.state_dict())


def test_state_round_trips_and_only_the_newest_epoch_is_kept(tmp_path: Path) -> None:
    assert load_latest_state(tmp_path / "none") is None
    first, second = _state(1), _state(2)
    save_state(tmp_path, first)
    save_state(tmp_path, second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0002"]
    loaded = load_latest_state(tmp_path)
    assert loaded is not None and (loaded.epoch, loaded.step, loaded.best_epoch) == (2, 20, 2)
    assert loaded.history == second.history
    assert all(torch.equal(loaded.online[k], v) for k, v in second.online.items())
    exp_avg = loaded.optimizer["state"][0]["exp_avg"]
    assert torch.equal(exp_avg, second.optimizer["state"][0]["exp_avg"])
    model = torch.nn.Linear(3, 2)
    torch.optim.AdamW(model.parameters(), lr=0.1).load_state_dict(loaded.optimizer)  # a real optimizer takes it


def test_a_half_written_epoch_is_never_read(tmp_path: Path) -> None:
    save_state(tmp_path, _state(1))
    half = tmp_path / ".epoch-0002.tmp.otherhost.1.abc"  # a killed writer's folder
    half.mkdir()
    (half / "online.safetensors").write_bytes(b"partial")
    no_state = tmp_path / "epoch-0003"  # renamed folders always hold state.json; this one is not an epoch
    no_state.mkdir()
    assert load_latest_state(tmp_path).epoch == 1


def test_spec_rejects_impossible_values_naming_the_field() -> None:
    from vjepa_core.errors import UserError

    assert PretrainSpec(lr=1).lr == 1.0
    for changes, field in [({"epochs": 0}, "epochs"), ({"ema_start": 0.999, "ema_end": 0.99}, "ema_end"),
                           ({"masks": "8x"}, "masks"), ({"lr": "fast"}, "lr"), ({"crop_scale": 0.0}, "crop_scale")]:
        with pytest.raises(UserError, match=field):
            PretrainSpec(**changes)
    base = PretrainSpec()
    assert base.pretrain_id("abc") == PretrainSpec().pretrain_id("abc") != base.pretrain_id("abd")
