"""Describes a matplotlib Figure as an `e2b/chart` object: line, scatter, bar, pie, superchart (§4.3)."""

# Imported inside the kernel only when a Figure is displayed, so matplotlib is never imported
# just for this. Box-and-whisker charts come back as `unknown` (not implemented).

from typing import Any, Dict, List


def _text(value: Any) -> str:
    return value.get_text() if hasattr(value, "get_text") else str(value)


def _num(value: Any) -> Any:
    """A JSON number (numpy scalars unwrapped), or a string for anything else."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, (int, float)) and value == value and value not in (float("inf"), float("-inf")):
        return value
    return str(value)


def _axis_info(ax, axis: str) -> Dict[str, Any]:
    """`x_label`, `x_ticks`, `x_tick_labels`, `x_scale` (or the y_ equivalents), as §4.3 names them."""
    get = getattr(ax, "get_" + axis + "axis")()
    ticks = list(get.get_ticklocs())
    labels = [_text(t) for t in get.get_ticklabels()]
    scale = get.get_scale()
    if get.converter is not None and "date" in type(get.converter).__module__:
        scale = "datetime"
    elif labels and any(l and not _looks_numeric(l) for l in labels) and scale == "linear":
        scale = "categorical"
    return {
        axis + "_label": getattr(ax, "get_" + axis + "label")(),
        axis + "_ticks": [_num(t) for t in ticks],
        axis + "_tick_labels": labels,
        axis + "_scale": scale,
    }


def _looks_numeric(label: str) -> bool:
    try:
        float(label.replace("\u2212", "-"))  # matplotlib uses a real minus sign
        return True
    except ValueError:
        return False


def _line_or_scatter(ax) -> Dict[str, Any]:
    lines = [l for l in ax.get_lines() if not l.get_label().startswith("_child")]
    scatters = [c for c in ax.collections if hasattr(c, "get_offsets")]
    elements: List[Dict[str, Any]] = []
    if lines:
        kind = "line"
        for line in lines:
            xs, ys = line.get_xdata(), line.get_ydata()
            elements.append({"label": line.get_label(), "points": [[_num(x), _num(y)] for x, y in zip(xs, ys)]})
    else:
        kind = "scatter"
        for coll in scatters:
            elements.append({"label": coll.get_label(), "points": [[_num(x), _num(y)] for x, y in coll.get_offsets()]})
    chart = {"type": kind, "title": ax.get_title(), "elements": elements}
    chart.update(_axis_info(ax, "x"))
    chart.update(_axis_info(ax, "y"))
    return chart


def _bar(ax) -> Dict[str, Any]:
    from matplotlib.container import BarContainer

    elements = []
    tick_labels = {round(float(t), 6): _text(l) for t, l in zip(ax.get_xticks(), ax.get_xticklabels())}
    for container in ax.containers:
        if not isinstance(container, BarContainer):
            continue
        group = container.get_label()
        for rect in container.patches:
            centre = round(float(rect.get_x() + rect.get_width() / 2), 6)
            elements.append({
                "label": tick_labels.get(centre, str(centre)),
                "value": _num(rect.get_height()),
                "group": "" if group.startswith("_") else group,
            })
    return {
        "type": "bar", "title": ax.get_title(), "elements": elements,
        "x_label": ax.get_xlabel(), "y_label": ax.get_ylabel(),
    }


def _pie(ax, wedges) -> Dict[str, Any]:
    # §4.3: pie elements are {label, angle, radius}; angle is the wedge's sweep in degrees.
    elements = [{"label": w.get_label(), "angle": _num(abs(w.theta2 - w.theta1)), "radius": _num(w.r)} for w in wedges]
    return {"type": "pie", "title": ax.get_title(), "elements": elements}


def axes_to_chart(ax) -> Dict[str, Any]:
    from matplotlib.container import BarContainer
    from matplotlib.patches import Wedge

    wedges = [p for p in ax.patches if isinstance(p, Wedge)]
    if wedges:
        return _pie(ax, wedges)

    if any(isinstance(c, BarContainer) for c in ax.containers):
        return _bar(ax)
    if ax.get_lines() or any(hasattr(c, "get_offsets") and len(c.get_offsets()) for c in ax.collections):
        return _line_or_scatter(ax)
    return {"type": "unknown", "title": ax.get_title(), "elements": []}


def figure_to_chart(fig) -> Dict[str, Any]:
    axes = [ax for ax in fig.get_axes() if ax.has_data()]
    if len(axes) == 1:
        return axes_to_chart(axes[0])
    title = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
    if not axes:
        return {"type": "unknown", "title": title, "elements": []}
    return {"type": "superchart", "title": title, "elements": [axes_to_chart(ax) for ax in axes]}
