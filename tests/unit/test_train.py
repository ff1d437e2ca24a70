"""The training loop: best epoch really restored, early stopping, accumulation == bigger batches."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from vjepa_core.spec import RunSpec
from vjepa_core.training.loop import SplitScores, fit, fit_together, trainable_state


class VectorFeed:
    """A feed over fixed in-memory vectors: inputs [N, 16], 3 classes (the loop's Feed protocol)."""

    def __init__(self, n: int = 16, batch_size: int = 8) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 16, generator=generator)
        self.y = torch.arange(n) % 3
        self.batch_size = batch_size

    def train_batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self.x), self.batch_size):
            end = start + self.batch_size
            yield self.x[start:end], self.y[start:end], torch.arange(start, min(end, len(self.x)))

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        yield from self.train_batches(0)

    def views_per_video(self, split: str) -> int:
        return 1

    @staticmethod
    def forward(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return model(inputs)


def scripted(accuracies: list[float], snapshots: list[dict[str, torch.Tensor]]):
    """An evaluator reporting the given val accuracies and recording the weights it was shown."""

    def evaluate(model: torch.nn.Module, split: str) -> SplitScores:
        snapshots.append(trainable_state(model))
        accuracy = accuracies[len(snapshots) - 1]
        labels = np.zeros(10, dtype=np.int64)
        probs = np.zeros((10, 2))
        probs[: int(accuracy * 10), 0] = 1.0
        probs[int(accuracy * 10):, 1] = 1.0
        return SplitScores(probs, labels, loss=1.0 - accuracy)

    return evaluate


def run_fit(spec: RunSpec, accuracies: list[float], feed: VectorFeed | None = None
            ) -> tuple[torch.nn.Module, list, object]:
    torch.manual_seed(0)
    model = torch.nn.Linear(16, 3)
    feed = feed or VectorFeed()
    snapshots: list[dict[str, torch.Tensor]] = []
    result = fit(model, feed, spec, device=torch.device("cpu"), precision="fp32",
                 steps_per_epoch=-(-len(feed.x) // feed.batch_size),
                 evaluate_split=scripted(accuracies, snapshots), progress=False)
    return model, snapshots, result


def test_best_epoch_weights_are_restored() -> None:
    model, snapshots, result = run_fit(RunSpec(epochs=4, lr=0.5), [0.5, 0.9, 0.3, 0.2])
    assert result.best_epoch == 2 and result.best_val_acc == 0.9
    final = dict(model.named_parameters())
    for name, value in snapshots[1].items():
        torch.testing.assert_close(final[name].detach(), value)
    assert not torch.equal(final["weight"].detach(), snapshots[3]["weight"])  # training did move on
    assert [row["epoch"] for row in result.epochs] == [1, 2, 3, 4]


def test_early_stopping_stops_after_patience() -> None:
    _, snapshots, result = run_fit(RunSpec(epochs=10, early_stopping_patience=2),
                                   [0.5, 0.4, 0.4, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9])
    assert len(result.epochs) == 3 and result.best_epoch == 1


def test_accumulation_matches_a_bigger_batch() -> None:
    spec = RunSpec(epochs=1, lr=0.1, warmup_ratio=0.0, schedule="constant", grad_clip=0.0, weight_decay=0.0)
    big, _, _ = run_fit(spec, [0.5], VectorFeed(batch_size=16))
    accumulated, _, _ = run_fit(spec.replace(accumulation_steps=2), [0.5], VectorFeed(batch_size=8))
    torch.testing.assert_close(big.weight, accumulated.weight)
    torch.testing.assert_close(big.bias, accumulated.bias)


@pytest.mark.parametrize("strategy", ["full", "lora_backbone"])
def test_encoder_weights_step_at_a_scaled_learning_rate(strategy: str) -> None:
    from vjepa_core.models import load_model
    from vjepa_core.strategies import get_strategy
    from vjepa_core.training.loop import make_optimizer

    spec = RunSpec(strategy=strategy, lr=1e-3, encoder_lr_scale=0.1, weight_decay=0.05)
    model = get_strategy(strategy).adapt(load_model("tiny", ["a", "b"]), spec)
    optimizer = make_optimizer(model, spec)
    by_param = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    rates = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        group = by_param[id(param)]
        rates[name] = group["base_lr"]
        assert group["weight_decay"] == (0.05 if param.ndim >= 2 else 0.0), name
    encoder_adapters = [n for n in rates if n.startswith("vjepa2.") and ".lora_" in n]
    encoder_weights = [n for n in rates if n.startswith("vjepa2.") and ".lora_" not in n]
    others = [n for n in rates if not n.startswith("vjepa2.")]
    assert others and all(rates[n] == pytest.approx(1e-3) for n in others)
    assert all(rates[n] == pytest.approx(1e-3) for n in encoder_adapters)  # adapters are new weights
    assert all(rates[n] == pytest.approx(1e-4) for n in encoder_weights)
    if strategy == "full":
        assert encoder_weights and not encoder_adapters
    else:
        assert encoder_adapters and not encoder_weights


def test_runs_fitted_together_end_exactly_where_they_would_alone() -> None:
    """One pass of the batches feeds every run; each keeps its optimizer, schedule, epochs, stopping, dropout."""
    specs = [RunSpec(epochs=3, lr=0.05, weight_decay=0.01, warmup_ratio=0.0),
             RunSpec(epochs=2, lr=0.2, weight_decay=0.8, accumulation_steps=2),
             RunSpec(epochs=4, lr=0.1, schedule="constant", early_stopping_patience=1, label_smoothing=0.1)]
    accuracies = [0.5, 0.6, 0.4, 0.3]  # the third run stops after epoch 3

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Linear(16, 3))  # dropout: each run's own draws

    def evaluator(split_model: torch.nn.Module, split: str) -> SplitScores:
        return scripted(accuracies, snapshots[id(split_model)])(split_model, split)

    feed, cpu = VectorFeed(), torch.device("cpu")
    alone, together = [model() for _ in specs], [model() for _ in specs]
    snapshots = {id(m): [] for m in alone + together}
    results = [fit(m, feed, spec, device=cpu, precision="fp32", steps_per_epoch=2, evaluate_split=evaluator,
                   progress=False) for m, spec in zip(alone, specs, strict=True)]
    joint = fit_together(together, specs, feed, device=cpu, precision="fp32", steps_per_epoch=2,
                         evaluate_split=evaluator, progress=False)
    assert [len(r.epochs) for r in joint] == [len(r.epochs) for r in results] == [3, 2, 3]
    for a, b, ra, rb in zip(alone, together, results, joint, strict=True):
        torch.testing.assert_close(dict(a.named_parameters()), dict(b.named_parameters()))
        for key in ("train_loss", "lr"):  # pytest >= 9.2's approx takes flat sequences only
            assert [e[key] for e in ra.epochs] == pytest.approx([e[key] for e in rb.epochs])
        assert (ra.best_epoch, ra.best_val_acc) == (rb.best_epoch, rb.best_val_acc)
    assert joint[0].epochs[0]["train_loss"] != joint[1].epochs[0]["train_loss"]  # they did train differently
