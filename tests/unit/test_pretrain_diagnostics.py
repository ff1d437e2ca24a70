"""Collapse diagnostics and the per-epoch training state: numbers that mean what they say."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vjepa_core.pretrain.diagnostics import effective_rank, embedding_std, logistic_probe, pooled_features
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


def test_pooled_features_keep_the_order_of_time() -> None:
    tokens = torch.arange(2 * 4 * 3 * 5, dtype=torch.float32).reshape(2, 12, 5)  # 4 time steps x 3 places
    pooled = pooled_features(tokens, time_steps=4)
    assert pooled.shape == (2, 20)
    assert torch.equal(pooled[0, :5], tokens[0, :3].mean(0))
    assert torch.equal(pooled[0, 15:], tokens[0, 9:].mean(0))
    reversed_time = pooled_features(tokens.reshape(2, 4, 3, 5).flip(1).reshape(2, 12, 5), time_steps=4)
    assert not torch.equal(reversed_time, pooled)  # a plain mean could not tell these apart


def test_logistic_probe_separates_what_is_separable_and_not_noise() -> None:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(120) % 3
    centres = torch.randn(3, 10, generator=generator) * 3
    features = centres[labels] + torch.randn(120, 10, generator=generator)
    assert logistic_probe(features[:90], labels[:90], features[90:], labels[90:]) > 0.9
    noise = torch.randn(120, 10, generator=generator)
    assert logistic_probe(noise[:90], labels[:90], noise[90:], labels[90:]) < 0.6


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
