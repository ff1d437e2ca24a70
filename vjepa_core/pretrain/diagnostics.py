"""Collapse diagnostics of an encoder, computed on a fixed set of clips after every pretraining epoch.

A collapsed JEPA maps every clip to (nearly) the same embedding: the loss then falls to ~0 while the
features carry nothing. Three numbers show it, on tokens [clips, N, D] from the target encoder:
- `embedding_std`: the per-dimension standard deviation of the layer-normed target embeddings over
  all tokens of all clips, averaged over dimensions (about 1 when healthy, towards 0 when collapsed);
- `effective_rank`: exp(entropy of the normalised singular values) of the mean-pooled embeddings
  [clips, D] (Roy & Vetterli 2007): how many directions the clips actually spread over (1 = collapse);
- `probe_accuracy`: a frozen probe (multinomial logistic regression on standardised pooled features,
  trained on one part of a labelled set, scored on the other), when a probe set is given.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def effective_rank(features: torch.Tensor) -> float:
    """features [n, D] -> exp(entropy of normalised singular values of the centred features), in [1, min(n, D)]."""
    centred = features.double() - features.double().mean(0)
    singular = torch.linalg.svdvals(centred)
    if singular.sum() <= 0:
        return 1.0
    p = singular / singular.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def embedding_std(tokens: torch.Tensor) -> float:
    """tokens [clips, N, D] -> mean over D of the std over all clips and tokens of the layer-normed tokens."""
    normed = F.layer_norm(tokens.float(), (tokens.size(-1),))
    return float(normed.reshape(-1, normed.size(-1)).std(0).mean())


def pooled_features(tokens: torch.Tensor, *, time_steps: int) -> torch.Tensor:
    """tokens [clips, T' * S, D] -> [clips, T' * D]: the spatial mean at each time step, in order.

    A plain mean over all tokens cannot tell up from down (the same tokens, in another order); keeping
    the time axis lets a linear probe see the order of frames, which motion classes need."""
    clips, _, dim = tokens.shape
    return tokens.float().reshape(clips, time_steps, -1, dim).mean(2).reshape(clips, -1)


def logistic_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, *,
                   l2: float = 1e-3, max_iter: int = 200) -> float:
    """Accuracy on (test_x, test_y) of an L2-regularised multinomial logistic regression fit by L-BFGS."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    classes = int(max(train_y.max(), test_y.max())) + 1
    weight = torch.zeros(train_x.size(1), classes, dtype=train_x.dtype, requires_grad=True)
    bias = torch.zeros(classes, dtype=train_x.dtype, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(train_x @ weight + bias, train_y) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        return float(((test_x @ weight + bias).argmax(1) == test_y).float().mean())
