"""Collapse diagnostics of an encoder, computed on a fixed set of clips after every pretraining epoch.

A collapsed JEPA maps every clip to (nearly) the same embedding: the loss falls to ~0 while the features carry
nothing. Three numbers show it on target-encoder tokens [clips, N, D]: the embeddings' spread
(`embedding_std`), how many directions the clips spread over (`effective_rank`, Roy & Vetterli 2007), and, with
a labelled probe set, a frozen attentive probe's accuracy (mean pooling cannot serve: a shape moving up and one
moving down make the same tokens in another order).
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


def attentive_probe(train_tokens: torch.Tensor, train_y: torch.Tensor, test_tokens: torch.Tensor,
                    test_y: torch.Tensor, *, epochs: int = 100, heads: int = 4, seed: int = 0) -> float:
    """Accuracy on the test clips of a probe trained on frozen tokens [clips, N, D] of the train clips."""
    mean = train_tokens.float().mean((0, 1))
    std = train_tokens.float().std((0, 1)) + 1e-6
    train_x, test_x = (train_tokens.float() - mean) / std, (test_tokens.float() - mean) / std
    dim, classes = train_x.size(-1), int(max(train_y.max(), test_y.max())) + 1
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        attention = torch.nn.MultiheadAttention(dim, heads if dim % heads == 0 else 1, batch_first=True)
        query = torch.nn.Parameter(0.5 * torch.randn(1, 1, dim))
        head = torch.nn.Linear(dim, classes)
        optimizer = torch.optim.AdamW([*attention.parameters(), query, *head.parameters()], lr=3e-3,
                                      weight_decay=0.05)

        def logits(x: torch.Tensor) -> torch.Tensor:
            return head(attention(query.expand(len(x), -1, -1), x, x, need_weights=False)[0][:, 0])

        for _ in range(epochs):
            for batch in torch.randperm(len(train_y)).split(32):
                loss = F.cross_entropy(logits(train_x[batch]), train_y[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            return float((logits(test_x).argmax(1) == test_y).float().mean())
