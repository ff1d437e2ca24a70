"""The embeddings page's query layer (`dashboard.embeddings`) on known geometry and a real warehouse."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard import embeddings
from vjepa_core.store.warehouse import Warehouse


def _pairwise(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points[:, None] - points[None], axis=-1)


def test_pca_keeps_the_distances_of_points_on_a_plane() -> None:
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(30, 2)) * [5.0, 1.0]  # more spread along the first axis
    basis, _ = np.linalg.qr(rng.normal(size=(16, 2)))  # an orthonormal plane in 16-D
    vectors = (plane @ basis.T + rng.normal(size=16)).astype(np.float32)
    coords, explained = embeddings.project(vectors)
    assert np.allclose(_pairwise(coords), _pairwise(plane), atol=1e-3)
    assert explained.sum() == pytest.approx(1.0) and explained[0] > 0.9
    again, _ = embeddings.project(vectors[::-1].copy())  # the same data draws the same map
    assert np.allclose(again[::-1], coords, atol=1e-4)
    assert embeddings.project(vectors[:1])[0].tolist() == [[0.0, 0.0]]


def test_neighbours_by_cosine_similarity() -> None:
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0], [2, 0.1]], dtype=np.float32)
    near = embeddings.neighbours(vectors, 0, k=3)
    assert list(near["row"]) == [4, 1, 2] and list(near["rank"]) == [1, 2, 3]
    assert near["similarity"].iloc[0] == pytest.approx(2 / np.hypot(2, 0.1))
    assert list(embeddings.neighbours(vectors, 3, k=10)["row"]) == [2, 1, 4, 0]  # all others, farthest last


def _write(store: Warehouse, fingerprint: str, videos: list[str], labels: list[str], *, window: float | None = None,
           source: str = "encoder", dataset: str = "syn") -> np.ndarray:
    rows = pd.DataFrame({"model_fingerprint": fingerprint, "video": videos, "label": labels,
                         "start_frame": range(len(videos)), "end_frame": [i + 24 for i in range(len(videos))],
                         "start_s": None if window is None else 1.0, "end_s": None if window is None else 3.0,
                         "window_s": window, "stride_s": None if window is None else 1.0, "dataset": dataset,
                         "model": "preset:tiny", "source": source, "checkpoint": "run9" if source == "pooler" else None,
                         "dim": 4, "created_at": datetime.now()})
    vectors = np.random.default_rng(len(videos)).normal(size=(len(videos), 4)).astype(np.float32)
    store.write_embeddings(rows, vectors)
    return vectors


def test_sets_and_vectors_from_the_warehouse(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    store = Warehouse(path)
    whole = _write(store, "aaa", ["/d/up/u1.mp4", "/d/down/d1.mp4", "/d/up/u2.mp4"], ["up", "down", "up"])
    _write(store, "aaa", ["/d/long.mp4", "/d/long2.mp4"], ["mixed", "mixed"], window=2.0)
    _write(store, "bbb", ["/d/up/u1.mp4"], ["up"], source="pooler")
    sets = embeddings.embedding_sets(path).set_index("set_id")
    assert sorted(sets.index) == ["aaa", "aaa:2/1", "bbb"]
    assert (sets.loc["aaa", "kind"], sets.loc["aaa", "vectors"], sets.loc["aaa", "videos"]) == ("videos", 3, 3)
    assert sets.loc["aaa:2/1", "kind"] == "windows" and "per 2 s window" in sets.loc["aaa:2/1", "label"]
    assert "pooler of run9" in sets.loc["bbb", "label"]
    rows, vectors = embeddings.load_embeddings(path, "aaa")
    assert list(rows["name"]) == ["d1.mp4", "u1.mp4", "u2.mp4"]  # by label, then video
    assert np.allclose(vectors, whole[[1, 0, 2]])
    windows, _ = embeddings.load_embeddings(path, "aaa:2/1")
    assert list(windows["name"]) == ["long.mp4 @ 1.0-3.0 s", "long2.mp4 @ 1.0-3.0 s"]
    frame = embeddings.embedding_map(rows, embeddings.project(vectors)[0], picked=0, neighbour_rows=[2])
    assert list(frame["role"]) == ["picked", "other", "neighbour"]


def test_a_picker_says_how_many_videos_and_how_many_vectors_each_has(tmp_path: Path) -> None:
    """360 vectors of 360 videos are '360 videos, one vector each', never '360 vectors per video'."""
    path = tmp_path / "w.duckdb"
    store = Warehouse(path)
    _write(store, "aaa", [f"/d/clip{i}.mp4" for i in range(360)], [None] * 360)
    _write(store, "aaa", ["/d/long.mp4"] * 3 + ["/d/short.mp4"], [None] * 4, window=2.0)
    _write(store, "bbb", ["/d/a.mp4", "/d/a.mp4", "/d/b.mp4", "/d/b.mp4"], ["x"] * 4, window=2.0)
    labels = embeddings.embedding_sets(path).set_index("set_id")["label"]
    assert labels["aaa"] == "syn · preset:tiny encoder (mean) · 360 videos, one vector each · 4-d"
    assert labels["aaa:2/1"] == ("syn · preset:tiny encoder (mean) · 4 vectors, one per 2 s window every 1 s: "
                                 "1-3 per video, 2 videos · 4-d")
    assert labels["bbb:2/1"].endswith("4 vectors, one per 2 s window every 1 s: 2 per video, 2 videos · 4-d")
    rows, _ = embeddings.load_embeddings(path, "aaa")
    assert set(rows["label"]) == {embeddings.NO_LABEL} and not rows["labelled"].any()


def test_a_set_embedded_from_several_datasets_names_them(tmp_path: Path) -> None:
    """One model embeds every folder into one set of vectors: the picker names each folder, up to three."""
    path = tmp_path / "w.duckdb"
    store = Warehouse(path)
    for name in ("footage", "clips"):
        _write(store, "aaa", [f"/{name}/v{i}.mp4" for i in range(2)], [None] * 2, dataset=name)
    for name in ("a", "b", "c", "d"):
        _write(store, "bbb", [f"/{name}/v.mp4"], [None], dataset=name)
    labels = embeddings.embedding_sets(path).set_index("set_id")["label"]
    assert labels["aaa"] == "clips + footage · preset:tiny encoder (mean) · 4 videos, one vector each · 4-d"
    assert labels["bbb"].startswith("4 datasets · preset:tiny encoder (mean) · 4 videos, one vector each")
