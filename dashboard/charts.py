"""DataFrame -> Altair chart, one function per view; no Streamlit and no warehouse access here.

Each function takes the frame its namesake in `dashboard.queries` returns (columns named in the
docstring) and returns an `alt.Chart` (or layer/concat) with tooltips; charts where position
matters (scatters, curves) zoom and pan with the mouse wheel, and legends select a strategy.
Strategies keep one colour on every chart (their order in the registry picks it).
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

from vjepa_core.strategies import STRATEGIES

# Display order and colour slot: the registry's order (cheapest first; the registry imports no torch).
# A strategy the registry does not know (an old warehouse) still gets a colour, after these.
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d", "#bab0ac")
PCT = ".0%"
ACC_SCALE = alt.Scale(domain=[0, 1], clamp=True)
LEGEND_ROW = 20  # pixels per entry of a legend listed in one column
METRIC_TITLES = {"test_acc": "test accuracy", "best_val_acc": "validation accuracy (best epoch)",
                 "train_seconds": "training time (s)"}


def strategy_color(series: Sequence[str], *, legend: bool = True) -> alt.Color:
    """Colour by strategy with a fixed colour per strategy name, listing only the series present. A series may be
    `strategy on model` (`queries.standings.series_labels`): it takes its strategy's colour, lighter for each
    further model of the same strategy."""
    order = list(STRATEGIES)

    def rank(strategy: str) -> int:
        return order.index(strategy) if strategy in order else len(order)

    present = sorted(set(series), key=lambda label: (rank(_strategy_of(label)), label))
    seen: dict[str, int] = {}
    colors = []
    for label in present:
        strategy = _strategy_of(label)
        colors.append(_lighter(PALETTE[rank(strategy) % len(PALETTE)], seen.get(strategy, 0)))
        seen[strategy] = seen.get(strategy, 0) + 1
    return alt.Color("strategy:N", scale=alt.Scale(domain=present, range=colors),
                     legend=alt.Legend(title="strategy", labelLimit=320) if legend else None)


def distinct_colors(count: int) -> alt.Scale:
    """Categories that are not strategies (classes, questions): one clearly different hue each where `PALETTE`
    has enough, rather than Streamlit's theme, which pairs a colour with its own lighter shade."""
    return alt.Scale(range=list(PALETTE)) if count <= len(PALETTE) else alt.Scale(scheme="tableau20")


def _strategy_of(series: str) -> str:
    return series.split(" on ", 1)[0]


def _lighter(color: str, steps: int) -> str:
    """`color` (#rrggbb) mixed with white, 40% more per step (0: the colour itself)."""
    share = min(0.4 * steps, 0.8)
    channels = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * share):02x}" for c in channels)


def _legend_selection() -> alt.Parameter:
    return alt.selection_point(fields=["strategy"], bind="legend")


def _fade(selection: alt.Parameter) -> alt.OpacityValue:
    return alt.condition(selection, alt.value(1.0), alt.value(0.15))


def _with_band(frame: pd.DataFrame, mean: str, std: str) -> pd.DataFrame:
    """`low`/`high` = mean -/+ std, clipped to [0, 1] for accuracies (a std bar below 0% means nothing)."""
    frame = frame.copy()
    frame["low"] = (frame[mean] - frame[std].fillna(0)).clip(lower=0)
    frame["high"] = (frame[mean] + frame[std].fillna(0)).clip(upper=1)
    return frame


def chance_rule(levels: Sequence[float], channel: str, title: str) -> alt.LayerChart:
    """A dashed rule at each chance accuracy (`channel` "x" or "y"), labelled "chance" at its start."""
    data = pd.DataFrame({"chance": sorted({round(float(v), 6) for v in levels if pd.notna(v)})})
    tooltip = [alt.Tooltip("chance:Q", format=".1%", title="chance (largest test class)")]
    if channel == "y":  # horizontal: the label above the rule's left end
        position, corner, text = alt.Y("chance:Q", title=title), {"x": alt.value(0)}, {"baseline": "bottom", "dy": -2}
    else:  # vertical: the label right of the rule's top end
        position, corner, text = alt.X("chance:Q", title=title), {"y": alt.value(0)}, {"baseline": "top"}
    rule = alt.Chart(data).mark_rule(strokeDash=[4, 4], color="#666").encode(position, tooltip=tooltip)
    label = alt.Chart(data).mark_text(align="left", dx=4, color="#666", **text).encode(
        position, text=alt.value("chance"), **corner)
    return alt.layer(rule, label)


def leaderboard_chart(board: pd.DataFrame) -> alt.LayerChart:
    """Mean test accuracy and its 95% interval per configuration: t over seeds, or with one seed Wilson over the
    test videos (board: config, strategy, test_acc_mean/_std/_ci_low/_ci_high/_interval, n, best_in_strategy)."""
    data = board.assign(low=board["test_acc_ci_low"], high=board["test_acc_ci_high"])
    data["best"] = data["best_in_strategy"].map({True: "best of its strategy on validation", False: "other"})
    order = data.sort_values("test_acc_mean", ascending=False)["config"].tolist()
    y = alt.Y("config:N", sort=order, title=None, axis=alt.Axis(labelLimit=360))
    base = alt.Chart(data).encode(y=y)
    tooltip = ["config:N", "strategy:N", alt.Tooltip("test_acc_mean:Q", format=".1%", title="test acc (mean)"),
               alt.Tooltip("low:Q", format=".1%", title="95% CI low"), alt.Tooltip("high:Q", format=".1%",
                                                                                  title="95% CI high"),
               alt.Tooltip("test_acc_interval:N", title="CI of"), alt.Tooltip("test_acc_std:Q", format=".1%",
                                                                            title="std"), "n:Q",
               alt.Tooltip("best_val_acc_mean:Q", format=".1%", title="val acc (mean)"),
               alt.Tooltip("trainable_params:Q", format=",", title="trainable params")]
    x_title = "test accuracy (mean, 95% interval)"
    bars = base.mark_rule(strokeWidth=3, opacity=0.5).encode(
        x=alt.X("low:Q", title=x_title, axis=alt.Axis(format=PCT), scale=ACC_SCALE),
        x2="high:Q", color=strategy_color(data["strategy"]))
    points = base.mark_point(filled=True).encode(
        x="test_acc_mean:Q", color=strategy_color(data["strategy"]),
        shape=alt.Shape("best:N", scale=alt.Scale(domain=["best of its strategy on validation", "other"],
                                                  range=["diamond", "circle"]),
                            legend=alt.Legend(title=None, labelLimit=320)),
        size=alt.condition("datum.best_in_strategy", alt.value(220), alt.value(80)), tooltip=tooltip)
    chance = chance_rule(data["chance_acc"], "x", x_title)
    return alt.layer(bars, points, chance).properties(height=max(160, 34 * len(data)))


def params_chart(board: pd.DataFrame) -> alt.LayerChart:
    """Test accuracy vs trainable parameters (log x) with the Pareto frontier (board from `pareto`)."""
    data = _with_band(board, "test_acc_mean", "test_acc_std")
    select = _legend_selection()
    x = alt.X("trainable_params:Q", scale=alt.Scale(type="log"), title="trainable parameters (log)",
              axis=alt.Axis(format="~s"))
    y_title = "test accuracy (mean over seeds)"
    y = alt.Y("test_acc_mean:Q", title=y_title, axis=alt.Axis(format=PCT))
    tooltip = ["config:N", alt.Tooltip("trainable_params:Q", format=","),
               alt.Tooltip("test_acc_mean:Q", format=".1%"), alt.Tooltip("test_acc_std:Q", format=".1%"), "n:Q",
               alt.Tooltip("on_frontier:N", title="on Pareto frontier")]
    color = strategy_color(data["strategy"])
    frontier = alt.Chart(data[data["on_frontier"]]).mark_line(
        interpolate="step-after", strokeDash=[6, 4], color="#888").encode(x=x, y=y)
    errors = alt.Chart(data).mark_rule(opacity=0.4).encode(x=x, y="low:Q", y2="high:Q", color=color,
                                                           opacity=_fade(select))
    points = alt.Chart(data).mark_circle(size=160).encode(
        x=x, y=y, color=color, opacity=_fade(select), tooltip=tooltip,
        stroke=alt.condition("datum.on_frontier", alt.value("black"), alt.value(None)),
    ).add_params(select)
    chance = chance_rule(data["chance_acc"], "y", y_title)
    return alt.layer(frontier, errors, points, chance).properties(height=380).interactive()


def efficiency_chart(board: pd.DataFrame) -> alt.Chart:
    """Test accuracy per million trainable parameters per configuration (board: acc_per_mparam)."""
    data = board[board["acc_per_mparam"] > 0].copy()  # a log axis has no 0
    # A bar on a log axis needs a start above 0: half the smallest value, the same for every bar.
    base = data["acc_per_mparam"].min() / 2
    data["base"] = base
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("base:Q", scale=alt.Scale(type="log", domainMin=base), title="test accuracy per million trainable "
                "parameters (log)"),
        x2="acc_per_mparam:Q",
        y=alt.Y("config:N", sort="-x", title=None, axis=alt.Axis(labelLimit=360)),
        color=strategy_color(data["strategy"]),
        tooltip=["config:N", alt.Tooltip("acc_per_mparam:Q", format=".3g", title="acc / M params"),
                 alt.Tooltip("test_acc_mean:Q", format=".1%"), alt.Tooltip("trainable_params:Q", format=",")],
    ).properties(height=max(140, 30 * len(data)))


def scaling_chart(table: pd.DataFrame, x: str, metric: str, *, x_title: str, log_x: bool = False,
                  chance: Sequence[float] = ()) -> alt.LayerChart:
    """One line per series of `metric` vs `x` (a strategy, or a strategy and model: `queries.standings.scaling`),
    bars = std over seeds; accuracy charts draw a rule at each `chance` level."""
    data = table[table["metric"] == metric].copy()
    accuracy = metric != "train_seconds"
    # mean - std below zero is an artefact of two seeds, not a negative time or accuracy.
    data["low"] = data["low"].clip(lower=0)
    if accuracy:
        data["high"] = data["high"].clip(upper=1)
    select = _legend_selection()
    color = strategy_color(data["strategy"])
    # Padding keeps the first and last points (and their bars) off the plot's edges.
    scale = alt.Scale(type="log", base=2, padding=24) if log_x else alt.Scale(zero=False, padding=24)
    ticks = sorted(float(v) for v in data[x].dropna().unique())
    xenc = alt.X(f"{x}:Q", title=x_title, scale=scale, axis=alt.Axis(values=ticks, format="~g"))
    yaxis = alt.Axis(format=PCT) if accuracy else alt.Axis()
    yenc = alt.Y("mean:Q", title=METRIC_TITLES[metric], axis=yaxis, scale=ACC_SCALE if accuracy else alt.Scale())
    tooltip = ["strategy:N", f"{x}:Q", alt.Tooltip("mean:Q", format=".1%" if accuracy else ".1f"),
               alt.Tooltip("std:Q", format=".1%" if accuracy else ".1f"), "n:Q"]
    base = alt.Chart(data).encode(x=xenc, color=color, opacity=_fade(select))
    line = base.mark_line(point=alt.OverlayMarkDef(size=70, filled=True)).encode(y=yenc, tooltip=tooltip)
    # Rules, not mark_errorbar: Vega-Lite's composite errorbar drops the whole chart under a conditional opacity.
    bars = base.mark_rule(strokeWidth=2).encode(y=alt.Y("low:Q", title=METRIC_TITLES[metric]), y2="high:Q")
    layers = [bars, line.add_params(select)]
    if accuracy and len(chance):
        layers.append(chance_rule(chance, "y", METRIC_TITLES[metric]))
    return alt.layer(*layers).properties(height=300).interactive()


def heatmap_chart(grid: pd.DataFrame, *, x: str = "lr", y: str = "lora_rank", title: str = "") -> alt.FacetChart:
    """Mean metric per (x, y) cell, one panel per strategy (grid from `queries.sweeps.sweep_grid`)."""
    data = grid.copy()
    data["label"] = data.apply(lambda row: f"{row['mean']:.0%} (n={int(row['n'])})", axis=1)
    xenc = alt.X(f"{x}:O", title=x, axis=alt.Axis(labelAngle=0))
    yenc = alt.Y(f"{y}:O", title=y, sort="descending")
    rect = alt.Chart().mark_rect().encode(
        x=xenc, y=yenc, color=alt.Color("mean:Q", scale=alt.Scale(scheme="viridis", domain=[0, 1]),
                                        title=title or "mean", legend=alt.Legend(format=PCT)),
        tooltip=[f"{x}:O", f"{y}:O", alt.Tooltip("mean:Q", format=".1%"), "n:Q"])
    text = alt.Chart().mark_text(fontSize=12).encode(
        x=xenc, y=yenc, text="label:N",
        color=alt.condition("datum.mean > 0.55", alt.value("black"), alt.value("white")))
    return alt.layer(rect, text, data=data).properties(width=300, height=220).facet(
        column=alt.Column("strategy:N", title=None))


def parallel_chart(long: pd.DataFrame, axes: Sequence[str], *, color: str = "best_val_acc") -> alt.LayerChart:
    """One line per run across the swept options, coloured by `color` (long from `parallel_coordinates`)."""
    highlight = alt.selection_point(fields=["config"], on="pointerover", clear="pointerout")
    xenc = alt.X("axis:N", sort=list(axes), title=None, axis=alt.Axis(labelAngle=0, orient="top"))
    yenc = alt.Y("position:Q", axis=None, scale=alt.Scale(domain=[-0.05, 1.05]))
    lines = alt.Chart(long).mark_line(strokeWidth=2.5).encode(
        x=xenc, y=yenc, detail="run_id:N",
        # The data's own range, not 0-100%: runs of one sweep differ by a few points and must look different.
        color=alt.Color(f"{color}:Q", scale=alt.Scale(scheme="viridis"), legend=alt.Legend(format=PCT,
                        title="val accuracy")),
        opacity=alt.condition(highlight, alt.value(0.95), alt.value(0.25)),
        tooltip=["config:N", "axis:N", "value:N", alt.Tooltip(f"{color}:Q", format=".1%")],
    ).add_params(highlight)
    rules = alt.Chart(long).mark_rule(color="#999").encode(x=xenc)
    ticks = long.drop_duplicates(["axis", "value"])
    # A white copy under each label keeps it readable where lines cross it.
    halo = alt.Chart(ticks).mark_text(align="left", dx=6, fontSize=11, stroke="white", strokeWidth=4).encode(
        x=xenc, y=yenc, text="value:N")
    labels = alt.Chart(ticks).mark_text(align="left", dx=6, fontSize=11, fontWeight="bold").encode(
        x=xenc, y=yenc, text="value:N")
    return alt.layer(rules, lines, halo, labels).properties(height=340)


def gap_chart(board: pd.DataFrame) -> alt.LayerChart:
    """Validation vs test accuracy per configuration; below the diagonal, validation flattered it."""
    data = board.dropna(subset=["best_val_acc_mean", "test_acc_mean"])
    select = _legend_selection()
    diagonal = alt.Chart(pd.DataFrame({"v": [0.0, 1.0]})).mark_line(strokeDash=[4, 4], color="#999").encode(
        x="v:Q", y="v:Q")
    points = alt.Chart(data).mark_circle(size=140).encode(
        x=alt.X("best_val_acc_mean:Q", title="validation accuracy (mean)", axis=alt.Axis(format=PCT),
                scale=ACC_SCALE),
        y=alt.Y("test_acc_mean:Q", title="test accuracy (mean)", axis=alt.Axis(format=PCT), scale=ACC_SCALE),
        color=strategy_color(data["strategy"]), opacity=_fade(select),
        tooltip=["config:N", alt.Tooltip("best_val_acc_mean:Q", format=".1%"),
                 alt.Tooltip("test_acc_mean:Q", format=".1%"), "n:Q"],
    ).add_params(select)
    return alt.layer(diagonal, points).properties(height=340).interactive()


def curves_chart(long: pd.DataFrame, *, by_run: bool = False) -> alt.HConcatChart:
    """Loss and accuracy per epoch (long from `curves_long`); colour = split, or run when comparing."""
    panels = []
    for panel, fmt in (("loss", ".3f"), ("accuracy", ".1%")):
        data = long[long["panel"] == panel]
        color = alt.Color("run:N", title="run", scale=alt.Scale(range=list(PALETTE))) if by_run else alt.Color(
            "split:N", scale=alt.Scale(domain=["train", "val"], range=[PALETTE[0], PALETTE[1]]))
        encoding = {"strokeDash": alt.StrokeDash("split:N", title="split")} if by_run else {}
        axis = alt.Axis(format=PCT) if panel == "accuracy" else alt.Axis()
        chart = alt.Chart(data).mark_line(point=True).encode(
            x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")), y=alt.Y("value:Q", title=panel, axis=axis),
            color=color, tooltip=["run:N", "split:N", "epoch:Q", alt.Tooltip("value:Q", format=fmt)], **encoding,
        ).properties(width=320, height=240, title=panel).add_params(
            alt.selection_interval(bind="scales", name=f"zoom_{panel}"))
        panels.append(chart)
    return alt.hconcat(*panels)


HEAT_AXIS_ROOM = 100  # pixels under a heat map's cells: class names at 45 degrees, then the axis title


def confusion_chart(grid: pd.DataFrame) -> alt.LayerChart:
    """Confusion heat map (grid from `confusion_grid`): colour = share of the true class, text = count."""
    xenc = alt.X("pred_class:N", title="predicted", axis=alt.Axis(labelAngle=-45, labelOverlap=False))
    yenc = alt.Y("true_class:N", title="true")
    rect = alt.Chart(grid).mark_rect().encode(
        x=xenc, y=yenc, color=alt.Color("rate:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]),
                                        legend=alt.Legend(format=PCT, title="share of true class")),
        tooltip=["true_class:N", "pred_class:N", "count:Q", alt.Tooltip("rate:Q", format=".0%")])
    text = alt.Chart(grid[grid["count"] > 0]).mark_text(fontSize=13).encode(
        x=xenc, y=yenc, text="count:Q",
        color=alt.condition("datum.rate > 0.5", alt.value("white"), alt.value("black")))
    return _heat_map(rect, text, grid)


def _heat_map(rect: alt.Chart, text: alt.Chart, grid: pd.DataFrame) -> alt.LayerChart:
    """A confusion heat map with rows 44 pixels high. The chart's height includes the predicted classes' labels
    and the axis title below the cells (Streamlit fits the chart to its size): without room for them, a run with
    two or three classes got a sliver of cells."""
    side = 44 * max(1, grid["true_class"].nunique())
    return alt.layer(rect, text).properties(width=side, height=side + HEAT_AXIS_ROOM)


def class_metrics_chart(class_metrics: pd.DataFrame) -> alt.Chart:
    """Precision, recall and F1 per class (class_metrics rows of one run and split)."""
    long = class_metrics.melt(id_vars=["class_name", "support"], value_vars=["precision", "recall", "f1"],
                              var_name="metric")
    return alt.Chart(long).mark_bar().encode(
        y=alt.Y("class_name:N", title=None), yOffset=alt.YOffset("metric:N", sort=["precision", "recall", "f1"]),
        x=alt.X("value:Q", title="score", axis=alt.Axis(format=PCT), scale=ACC_SCALE),
        color=alt.Color("metric:N", sort=["precision", "recall", "f1"],
                        scale=alt.Scale(range=[PALETTE[0], PALETTE[1], PALETTE[2]])),
        tooltip=["class_name:N", "metric:N", alt.Tooltip("value:Q", format=".1%"), "support:Q"],
    ).properties(height=max(160, 48 * long["class_name"].nunique()))


def time_split_chart(split: pd.DataFrame) -> alt.Chart:
    """Seconds per phase of a run (split from `queries.detail.time_split`) as one stacked bar."""
    return alt.Chart(split).mark_bar(height=36).encode(
        x=alt.X("seconds:Q", stack="zero", title="seconds"),
        color=alt.Color("phase:N", sort=list(split["phase"]), scale=alt.Scale(range=list(PALETTE)),
                        legend=alt.Legend(orient="bottom", direction="horizontal", title=None)),
        order=alt.Order("index:Q"),
        tooltip=["phase:N", alt.Tooltip("seconds:Q", format=".2f"), alt.Tooltip("share:Q", format=".0%")],
    ).transform_calculate(index="indexof(['decode','encode','fit','eval','other'], datum.phase)").properties(
        height=60)


def confusion_delta_chart(delta: pd.DataFrame) -> alt.LayerChart:
    """Difference of two confusion matrices' row shares (delta from `confusion_delta`)."""
    xenc = alt.X("pred_class:N", title="predicted", axis=alt.Axis(labelAngle=-45, labelOverlap=False))
    yenc = alt.Y("true_class:N", title="true")
    rect = alt.Chart(delta).mark_rect().encode(
        x=xenc, y=yenc, color=alt.Color("delta:Q", scale=alt.Scale(scheme="redblue", domain=[-1, 1]),
                                        legend=alt.Legend(format="+.0%", title="share change")),
        tooltip=["true_class:N", "pred_class:N", alt.Tooltip("delta:Q", format="+.0%"), "count_a:Q", "count_b:Q"])
    text = alt.Chart(delta[delta["count_delta"] != 0]).mark_text(fontSize=12).encode(
        x=xenc, y=yenc, text=alt.Text("count_delta:Q", format="+d"))
    return _heat_map(rect, text, delta)


def class_delta_chart(deltas: pd.DataFrame, *, metric: str = "f1") -> alt.Chart:
    """Per-class change of `metric` against the baseline run (deltas from `class_deltas`, baseline excluded)."""
    return alt.Chart(deltas).mark_bar().encode(
        y=alt.Y("class_name:N", title=None), yOffset="run:N",
        x=alt.X("delta:Q", title=f"{metric} change vs the first run", axis=alt.Axis(format="+.0%")),
        color=alt.Color("run:N", title="run", scale=alt.Scale(range=list(PALETTE[1:]))),
        tooltip=["class_name:N", "run:N", alt.Tooltip(f"{metric}:Q", format=".1%"),
                 alt.Tooltip("delta:Q", format="+.1%")],
    ).properties(height=max(160, 40 * deltas["class_name"].nunique()))


def embedding_map_chart(frame: pd.DataFrame, *, x_title: str = "PC 1", y_title: str = "PC 2") -> alt.LayerChart:
    """`dashboard.embeddings.embedding_map`: x, y, name, label, role -> points coloured by class; the picked
    point and its nearest neighbours ringed (larger for the picked one)."""
    roles = alt.Scale(domain=["other", "neighbour", "picked"], range=[40, 110, 260])
    base = alt.Chart(frame).encode(
        x=alt.X("x:Q", title=x_title), y=alt.Y("y:Q", title=y_title),
        size=alt.Size("role:N", scale=roles, legend=None),
        tooltip=["name:N", "label:N", "role:N", alt.Tooltip("x:Q", format=".2f"), alt.Tooltip("y:Q", format=".2f")])
    points = base.mark_circle(opacity=0.85).encode(
        color=alt.Color("label:N", title="class", scale=distinct_colors(frame["label"].nunique())))
    rings = base.transform_filter("datum.role != 'other'").mark_point(filled=False, color="black", strokeWidth=2)
    return (points + rings).properties(height=460).interactive()


def pretrain_chart(long: pd.DataFrame) -> alt.FacetChart:
    """One panel per diagnostic (long from `pretrain_curves`), lines per run, a ring on the kept epoch."""
    base = alt.Chart().encode(
        x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")), y=alt.Y("value:Q", title=None),
        color=alt.Color("run:N", scale=alt.Scale(range=list(PALETTE)), legend=alt.Legend(title="run", labelLimit=360)),
        tooltip=["run:N", "metric:N", "epoch:Q", alt.Tooltip("value:Q", format=".4g"), "kept:N"])
    lines = base.mark_line(point=True)
    kept = base.transform_filter(alt.datum.kept).mark_point(size=160, filled=False, strokeWidth=2)
    return alt.layer(lines, kept, data=long).properties(width=300, height=200).facet(
        facet=alt.Facet("metric:N", title=None, sort=list(long["metric"].drop_duplicates())), columns=2,
    ).resolve_scale(y="independent")


CALLS = ("chosen", "worse", "tied", "better", "untested")
CALL_COLORS = ("#1a7f37", "#9a9a9a", "#4c78a8", "#e45756", "#d4a72c")


def verdict_chart(points: pd.DataFrame) -> alt.LayerChart:
    """Per question (a row), every configuration's test accuracy and 95% interval, coloured by what the verdict
    calls it against the winner; a diamond marks the deployment pick (points: `queries.verdicts.verdict_points`)."""
    data = points.assign(pick=points["deployment_pick"].map({True: "deployment pick", False: "other"}))
    y = alt.Y("question:N", sort=list(dict.fromkeys(data["question"])), title=None, axis=alt.Axis(labelLimit=360))
    color = alt.Color("call:N", scale=alt.Scale(domain=list(CALLS), range=list(CALL_COLORS)),
                      legend=alt.Legend(title="against the winner"))
    x_title = "test accuracy (mean, 95% interval)"
    base = alt.Chart(data).encode(y=y, yOffset=alt.YOffset("config:N"), color=color)
    tooltip = ["question:N", "config:N", "call:N", alt.Tooltip("test_acc:Q", format=".1%", title="test acc"),
               alt.Tooltip("ci_low:Q", format=".1%", title="95% CI low"),
               alt.Tooltip("ci_high:Q", format=".1%", title="95% CI high"), alt.Tooltip("interval:N", title="CI of"),
               alt.Tooltip("p_holm:Q", format=".2g", title="Holm p vs winner"), alt.Tooltip("pick:N", title="")]
    bars = base.mark_rule(strokeWidth=2, opacity=0.6).encode(
        x=alt.X("ci_low:Q", title=x_title, axis=alt.Axis(format=PCT), scale=ACC_SCALE), x2="ci_high:Q")
    dots = base.mark_point(filled=True).encode(
        x="test_acc:Q", tooltip=tooltip,
        shape=alt.Shape("pick:N", scale=alt.Scale(domain=["deployment pick", "other"], range=["diamond", "circle"]),
                        title=None),
        size=alt.condition("datum.deployment_pick", alt.value(200), alt.value(60)))
    return alt.layer(bars, dots).properties(height=max(160, 60 * data["question"].nunique()))


def detectable_chart(curve: pd.DataFrame) -> alt.LayerChart:
    """The smallest difference each question's test set detects (80% power) against test-set size, log x, with
    each question's own size marked (curve: `queries.verdicts.detectable_curve`)."""
    data = curve.dropna(subset=["detectable_points"])
    x = alt.X("test_videos:Q", scale=alt.Scale(type="log"), title="test videos (log)", axis=alt.Axis(format="~g"))
    y = alt.Y("detectable_points:Q", title="detectable (points)")
    color = alt.Color("question:N", scale=distinct_colors(data["question"].nunique()),
                      legend=alt.Legend(title=None, orient="bottom", columns=1, labelLimit=480))
    tooltip = ["question:N", "test_videos:Q", alt.Tooltip("detectable_points:Q", format=".1f", title="points")]
    lines = alt.Chart(data).mark_line().encode(x=x, y=y, color=color, tooltip=tooltip)
    now = alt.Chart(data[data["current"]]).mark_point(filled=True, size=140, shape="diamond").encode(
        x=x, y=y, color=color, tooltip=[*tooltip, alt.Tooltip("current:N", title="this study")])
    # Streamlit fits the whole chart, legend included, into its height: one legend row per question.
    return alt.layer(lines, now).properties(height=300 + LEGEND_ROW * data["question"].nunique()).interactive()
