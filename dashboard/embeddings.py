"""Embeddings for the dashboard's map: the sets of vectors `runner embed` wrote (one per model fingerprint, window
and stride), one set's rows with their vectors float32 [rows, D], a 2-D PCA map of them [rows, 2] (signs fixed,
so the same data always draws the same map) and a picked point's nearest neighbours by cosine. Reads are short
read-only blocks that raise `UserError` for the page to show; the shaping is pure numpy and pandas. No torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vjepa_core.store import warehouse as wh

SET_KEYS = ("model_fingerprint", "window_s", "stride_s")
MAX_NAMED_DATASETS = 3
NO_LABEL = "(no label)"  # videos embedded from a set without labels (a plain folder, a glob, a list)


def embedding_sets(path: str | Path) -> pd.DataFrame:
    sql = """
        WITH per_video AS (
            SELECT model_fingerprint, window_s, stride_s, video, count(*) AS vectors, any_value(model) AS model,
                   any_value(source) AS source, any_value(checkpoint) AS checkpoint, any_value(dataset) AS dataset,
                   any_value(dim) AS dim, max(created_at) AS created_at
            FROM embeddings GROUP BY model_fingerprint, window_s, stride_s, video)
        SELECT model_fingerprint, window_s, stride_s, any_value(model) AS model, any_value(source) AS source,
               any_value(checkpoint) AS checkpoint, string_agg(DISTINCT dataset, ' + ' ORDER BY dataset) AS dataset,
               count(DISTINCT dataset) AS datasets, sum(vectors)::BIGINT AS vectors,
               count(*) AS videos, min(vectors) AS min_per_video, max(vectors) AS max_per_video,
               any_value(dim) AS dim, max(created_at) AS created_at
        FROM per_video GROUP BY model_fingerprint, window_s, stride_s
        ORDER BY created_at DESC, model_fingerprint, window_s NULLS FIRST, stride_s"""
    with wh.read_connection(path) as conn:
        sets = conn.execute(sql).df()
    sets["kind"] = np.where(sets["window_s"].isna(), "videos", "windows")
    sets["set_id"] = [set_id(row) for row in sets.to_dict("records")]
    sets["label"] = [_describe(row) for row in sets.to_dict("records")]
    return sets


def set_id(row: dict) -> str:
    """`<fingerprint>` for whole videos, `<fingerprint>:<window>/<stride>` for windows."""
    if row.get("window_s") is None or pd.isna(row["window_s"]):
        return str(row["model_fingerprint"])
    return f"{row['model_fingerprint']}:{row['window_s']:g}/{row['stride_s']:g}"


def _describe(row: dict) -> str:
    """What a picker shows: 'syn · preset:tiny encoder (mean) · 360 videos, one vector each · 64-d'; windowed:
    '... · 1,200 vectors, one per 2 s window every 1 s: 12-60 per video, 40 videos · 64-d'."""
    made_by = f"pooler of {row['checkpoint']}" if row["source"] == "pooler" else f"{row['model']} encoder (mean)"
    videos = f"{row['videos']:,} video{'s' * (row['videos'] != 1)}"
    if row["kind"] == "videos":
        what = f"{videos}, one vector each"
    else:
        low, high = row["min_per_video"], row["max_per_video"]
        per_video = f"{low}" if low == high else f"{low}-{high}"
        what = (f"{row['vectors']:,} vectors, one per {row['window_s']:g} s window every {row['stride_s']:g} s: "
                f"{per_video} per video, {videos}")
    return f"{_datasets(row)} · {made_by} · {what} · {row['dim']}-d"


def _datasets(row: dict) -> str:
    """The sets of videos a set of vectors came from (one model embeds many into one set): up to three names
    ('clips + footage'), else how many."""
    return row["dataset"] if row["datasets"] <= MAX_NAMED_DATASETS else f"{row['datasets']} datasets"


def load_embeddings(path: str | Path, chosen: str) -> tuple[pd.DataFrame, np.ndarray]:
    fingerprint, _, window = chosen.partition(":")
    where = "model_fingerprint = ? AND window_s IS NULL"
    params: list = [fingerprint]
    if window:
        window_s, stride_s = (float(part) for part in window.split("/"))
        where, params = "model_fingerprint = ? AND window_s = ? AND stride_s = ?", [fingerprint, window_s, stride_s]
    sql = (f"SELECT video, label, split, start_s, end_s, start_frame, end_frame, embedding FROM embeddings "
           f"WHERE {where} ORDER BY label, video, start_frame")
    with wh.read_connection(path) as conn:
        rows = conn.execute(sql, params).df()
    vectors = np.array(rows.pop("embedding").tolist(), dtype=np.float32).reshape(len(rows), -1)
    rows["name"] = [_name(row) for row in rows.to_dict("records")]
    rows["labelled"] = rows["label"].notna()
    rows["label"] = rows["label"].astype(object).where(rows["labelled"], NO_LABEL)
    return rows, vectors


def _name(row: dict) -> str:
    name = Path(str(row["video"])).name
    if row["start_s"] is None or pd.isna(row["start_s"]):
        return name
    return f"{name} @ {row['start_s']:.1f}-{row['end_s']:.1f} s"


def project(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PCA to 2-D: coordinates [rows, 2] and the share of variance each axis explains [2]."""
    rows = len(vectors)
    coords, explained = np.zeros((rows, 2), np.float64), np.zeros(2)
    if rows < 2:
        return coords, explained
    centred = vectors.astype(np.float64) - vectors.mean(axis=0)
    left, singular, right = np.linalg.svd(centred, full_matrices=False)
    # svd's signs are arbitrary: make each component's largest loading positive, as sklearn does.
    signs = np.sign(right[np.arange(len(right)), np.abs(right).argmax(axis=1)])
    signs[signs == 0] = 1
    components = min(2, len(singular))
    coords[:, :components] = (left * singular * signs)[:, :components]
    total = float((singular**2).sum())
    if total > 0:
        explained[:components] = singular[:components] ** 2 / total
    return coords, explained


def neighbours(vectors: np.ndarray, index: int, k: int = 5) -> pd.DataFrame:
    """The `k` rows closest to row `index` by cosine similarity (itself excluded), most similar first."""
    norms = np.linalg.norm(vectors, axis=1)
    norms[norms == 0] = 1.0
    unit = vectors / norms[:, None]
    similarity = unit @ unit[index]
    order = [i for i in np.argsort(-similarity, kind="stable") if i != index][:k]
    return pd.DataFrame({"rank": range(1, len(order) + 1), "row": order, "similarity": similarity[order]})


def embedding_map(rows: pd.DataFrame, coords: np.ndarray, picked: int | None = None,
                  neighbour_rows: list[int] | None = None) -> pd.DataFrame:
    frame = rows[["name", "label", "video"]].copy()
    frame["x"], frame["y"] = coords[:, 0], coords[:, 1]
    frame["role"] = "other"
    if neighbour_rows:
        frame.iloc[list(neighbour_rows), frame.columns.get_loc("role")] = "neighbour"
    if picked is not None:
        frame.iloc[picked, frame.columns.get_loc("role")] = "picked"
    return frame
