"""Describes a matplotlib Figure as an `e2b/chart` object, with the types and fields E2B's interpreter gives (§4.3)."""

# Imported inside the kernel only when a Figure is displayed, so matplotlib is never imported
# just for this. The rules (which artists make which chart type, the unit in a label, pie
# angles rounded to 8 significant digits, a box's quartiles from its patch) follow what E2B's
# code interpreter returns, so code written against it reads the same fields and values; the
# Python SDK reads every key of a chart's type by name, so absent values are None, not missing.

import datetime
import re
from decimal import Decimal, localcontext
from typing import Any, Dict, List, Optional

# "Time (s)" -> "s", "Mass [kg]" -> "kg"
_UNIT = re.compile(r"\s\((.*?)\)|\[(.*?)\]")


def _round8(number: Any) -> float:
    """Rounded to about 8 significant digits (a pie's 323.99999141693115 is 324)."""
    d = Decimal(str(number))
    with localcontext() as ctx:
        ctx.prec = max(1, 8 - d.adjusted())
        return float(+d)


def _none_if_empty(s: str) -> Optional[str]:
    return s if s else None


def _unit(label: Optional[str]) -> Optional[str]:
    m = _UNIT.search(label) if label else None
    return (m.group(1) or m.group(2)) if m else None


def _base(kind: str, ax) -> Dict[str, Any]:
    return {"type": kind, "title": _none_if_empty(ax.get_title()), "elements": []}


def _two_d(kind: str, ax) -> Dict[str, Any]:
    chart = _base(kind, ax)
    x_label, y_label = _none_if_empty(ax.get_xlabel()), _none_if_empty(ax.get_ylabel())
    chart.update({"x_label": x_label, "y_label": y_label, "x_unit": _unit(x_label), "y_unit": _unit(y_label)})
    return chart


def _swap_axes(chart: Dict[str, Any]) -> None:
    chart["x_label"], chart["y_label"] = chart["y_label"], chart["x_label"]
    chart["x_unit"], chart["y_unit"] = chart["y_unit"], chart["x_unit"]


def _is_date_axis(axis) -> bool:
    conv = axis.get_converter() if hasattr(axis, "get_converter") else axis.converter
    return conv is not None and type(conv).__module__ == "matplotlib.dates"


def _ticks(axis) -> List[Any]:
    import matplotlib.dates

    ticks = list(axis.get_ticklocs())
    if _is_date_axis(axis):
        return [matplotlib.dates.num2date(t).isoformat() for t in ticks]
    return [float(t) if _is_number(t) else t for t in ticks]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) or (hasattr(v, "dtype") and getattr(v.dtype, "kind", "") in "iuf")


def _scale(axis, ticks: List[Any], labels: List[str]) -> str:
    if _is_date_axis(axis):
        return "datetime"
    scale = axis.get_scale()
    if scale != "linear":
        return scale
    # Categories sit at 0, 1, 2, ... with labels that are not those numbers.
    for i, (tick, label) in enumerate(zip(ticks, labels)):
        if not (_is_number(tick) and tick == i and str(i) != label):
            return "linear"
    return "categorical"


def _point(v: Any) -> Any:
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    if hasattr(v, "dtype") and v.dtype.kind == "M":  # numpy.datetime64
        return str(v.astype("datetime64[s]"))
    if _is_number(v):
        return float(v)
    return v


def _points_chart(kind: str, ax) -> Dict[str, Any]:
    chart = _two_d(kind, ax)
    for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
        labels = [t.get_text() for t in axis.get_ticklabels()]
        ticks = _ticks(axis)
        chart[name + "_ticks"] = ticks
        chart[name + "_tick_labels"] = labels
        chart[name + "_scale"] = _scale(axis, ticks, labels)
    return chart


def _is_grid_line(line) -> bool:
    xs, ys = line.get_xdata(), line.get_ydata()
    return len(xs) == 2 and len(ys) == 2 and (xs[0] == xs[1] or ys[0] == ys[1])


def _line(ax) -> Dict[str, Any]:
    chart = _points_chart("line", ax)
    for line in ax.get_lines():
        if _is_grid_line(line):
            continue
        label = line.get_label()
        if label.startswith("_child"):
            label = "Line " + label[len("_child"):]
        chart["elements"].append({"label": label, "points": [[_point(x), _point(y)] for x, y in zip(line.get_xdata(), line.get_ydata())]})
    return chart


def _scatter(ax) -> Dict[str, Any]:
    chart = _points_chart("scatter", ax)
    for coll in ax.collections:
        chart["elements"].append({"label": coll.get_label(), "points": [[_point(x), _point(y)] for x, y in coll.get_offsets()]})
    return chart


def _bar(ax) -> Dict[str, Any]:
    chart = _two_d("bar", ax)
    for container in ax.containers:
        group = container.get_label()
        if group.startswith("_container"):
            group = "Group " + group[len("_container"):]
        heights = [r.get_height() for r in container]
        if all(h == heights[0] for h in heights):
            # barh: the bars' lengths are their widths and the categories are on the y axis
            _swap_axes(chart)
            labels = [t.get_text() for t in ax.get_yticklabels()]
            values = [r.get_width() for r in container]
        else:
            labels = [t.get_text() for t in ax.get_xticklabels()]
            values = heights
        for label, value in zip(labels, values):
            chart["elements"].append({"label": label, "group": group, "value": float(value)})
    return chart


def _pie(ax) -> Dict[str, Any]:
    chart = _base("pie", ax)
    for w in ax.patches:
        angle = abs(_round8(Decimal(float(w.theta2)) - Decimal(float(w.theta1))))
        chart["elements"].append({"label": w.get_label(), "angle": angle, "radius": float(w.r)})
    return chart


def _box_and_whisker(ax) -> Dict[str, Any]:
    chart = _two_d("box_and_whisker", ax)
    # Each box is a patch (patch_artist=True): its corners give the quartiles, the lines around it
    # the median (inside), whiskers (from its edges outwards) and fliers (single points).
    boxes = []
    for patch in ax.patches:
        v = patch.get_path().vertices
        xs, ys = [_round8(x) for x in v[:, 0]], [_round8(y) for y in v[:, 1]]
        boxes.append({"x0": min(xs), "x1": max(xs), "y0": min(ys), "y1": max(ys), "outliers": []})
    if not boxes:
        return chart
    # Boxes drawn horizontally (vert=False) have their whiskers along x; without whiskers to tell,
    # boxes that all share their height are taken as horizontal (E2B's rule).
    horizontal = _whiskers_along_x(ax, boxes)
    if horizontal is None:
        horizontal = all(b["y1"] - b["y0"] == boxes[0]["y1"] - boxes[0]["y0"] for b in boxes)
    labels = [t.get_text() for t in (ax.get_yticklabels() if horizontal else ax.get_xticklabels())]
    if horizontal:
        _swap_axes(chart)
        for b in boxes:
            b["x0"], b["x1"], b["y0"], b["y1"] = b["y0"], b["y1"], b["x0"], b["x1"]
    for line in ax.get_lines():
        xs, ys = [_round8(x) for x in line.get_xdata()], [_round8(y) for y in line.get_ydata()]
        if horizontal:
            xs, ys = ys, xs
        if len(xs) == 1:  # a flier
            box = next((b for b in boxes if b["x0"] <= xs[0] <= b["x1"]), None)
            if box is not None:
                box["outliers"].append(ys[0])
            continue
        if len(xs) != 2 or len(ys) != 2:
            continue
        box = next((b for b in boxes if b["x0"] <= min(xs) <= max(xs) <= b["x1"]), None)
        if box is None:
            continue
        if ys[0] == ys[1] and box["y0"] <= ys[0] <= box["y1"]:
            box["median"] = ys[0]
        elif max(ys) == box["y0"]:
            box["min"] = min(ys)
        elif min(ys) == box["y1"]:
            box["max"] = max(ys)
    for i, b in enumerate(boxes):
        chart["elements"].append({
            "label": labels[i] if i < len(labels) else str(i + 1),
            "min": b.get("min", b["y0"]),
            "first_quartile": b["y0"],
            "median": b.get("median", b["y0"]),
            "third_quartile": b["y1"],
            "max": b.get("max", b["y1"]),
            "outliers": b["outliers"],
        })
    return chart


def _whiskers_along_x(ax, boxes) -> Optional[bool]:
    """True when a whisker (a segment from a box's edge to outside it) runs along x, False along y, None if none does."""
    for line in ax.get_lines():
        xs, ys = [_round8(v) for v in line.get_xdata()], [_round8(v) for v in line.get_ydata()]
        if len(xs) != 2 or len(ys) != 2:
            continue
        for b in boxes:
            x0, x1, y0, y1 = b["x0"], b["x1"], b["y0"], b["y1"]
            if ys[0] == ys[1] and y0 < ys[0] < y1 and any(x in (x0, x1) for x in xs) and any(x < x0 or x > x1 for x in xs):
                return True
            if xs[0] == xs[1] and x0 < xs[0] < x1 and any(y in (y0, y1) for y in ys) and any(y < y0 or y > y1 for y in ys):
                return False
    return None


def _kind(ax) -> str:
    from matplotlib.collections import PathCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import PathPatch, Rectangle, Wedge
    from matplotlib.text import Text

    artists = [a for a in _own_artists(ax) if not isinstance(a, Text)]
    if all(isinstance(a, Line2D) for a in artists):
        return "line"
    if all(isinstance(a, (PathPatch, Line2D)) for a in artists):
        return "box_and_whisker"
    artists = [a for a in artists if not (isinstance(a, Line2D) and _is_grid_line(a))]
    if all(isinstance(a, PathCollection) for a in artists):
        return "scatter"
    if all(isinstance(a, Wedge) for a in artists):
        return "pie"
    if all(isinstance(a, Rectangle) for a in artists):
        return "bar"
    return "unknown"


def _own_artists(ax) -> List[Any]:
    """What the user's calls added to the axes (lines, patches, collections, texts, images), not its spines or axes."""
    return list(getattr(ax, "_children", None) or (list(ax.lines) + list(ax.patches) + list(ax.collections) + list(ax.texts) + list(ax.images)))


def axes_to_chart(ax) -> Dict[str, Any]:
    kind = _kind(ax)
    if kind == "line":
        return _line(ax)
    if kind == "scatter":
        return _scatter(ax)
    if kind == "bar":
        return _bar(ax)
    if kind == "pie":
        return _pie(ax)
    if kind == "box_and_whisker":
        return _box_and_whisker(ax)
    return _base("unknown", ax)


def figure_to_chart(fig) -> Dict[str, Any]:
    """The figure's chart; {} for a figure with nothing drawn (as E2B's)."""
    axes = fig.get_axes()
    if not axes or not any(ax.has_data() for ax in axes):
        return {}
    if len(axes) == 1:
        return axes_to_chart(axes[0])
    title = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else ""
    return {"type": "superchart", "title": title, "elements": [axes_to_chart(ax) for ax in axes]}
