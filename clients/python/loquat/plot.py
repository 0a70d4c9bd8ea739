"""Figures of per-layer reports and sweeps (matplotlib, an optional dependency).

``layer_errors(report)`` — per-layer error bars: before/after for an ``initAdapter`` result
(weight error, and output error when it was calibrated), the relative error (and the output
relative error when calibrated) for a ``quantize`` ledger, weightError/outputError for
``evaluate``, relativeError for ``extractAdapter``, the adapter loss (or truncation error) for
``merge``.

``sweep(results)`` — perplexity against bits per weight, one line per adapter method.

Both return the ``matplotlib.figure.Figure`` (made with pyplot, so Jupyter shows it inline;
call ``matplotlib.pyplot.close(fig)`` when drawing many).
"""

import re

from . import reports

__all__ = ["layer_errors", "sweep"]

# (column, legend label) pairs per report kind; the first present group is drawn per panel.
_PANELS = {
    "initAdapter": [
        ("weight error ‖W − W′‖/‖W‖", [("weightErrorBefore", "before (quantized)"), ("weightErrorAfter", "after (with adapter)")]),
        ("output error ‖X(W − W′)ᵀ‖/‖XWᵀ‖", [("outputErrorBefore", "before (quantized)"), ("outputErrorAfter", "after (with adapter)"),
                                            ("outputErrorOptimum", "optimum at this rank")]),
    ],
    "quantize": [
        ("relative error ‖W − Q‖/‖W‖", [("relativeError", "weight")]),
        ("output relative error ‖X(W − Q)ᵀ‖/‖XWᵀ‖", [("outputRelativeError", "output")]),
    ],
    "evaluate": [
        ("weight error", [("weightError", "weight error")]),
        ("output error", [("outputError", "output error")]),
    ],
    "extractAdapter": [
        ("relative error of the extracted ΔW", [("relativeError", "relative error")]),
    ],
    "merge": [
        ("share of the adapter lost", [("adapterLoss", "adapter loss"), ("requantizeAdapterLoss", "requantize loss")]),
        ("truncation error", [("truncationError", "truncation error")]),
    ],
}

_MAX_TICK_LABELS = 96


def _natural_key(layer):
    """Orders layer names block by block ("2.…" before "10.…")."""
    name = layer.get("name", "") if isinstance(layer, dict) else ""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def _pyplot(what):
    try:
        import matplotlib.pyplot as pyplot
    except ImportError as error:
        raise ImportError("%s needs matplotlib, which is not installed: %s, or pip install matplotlib"
                          % (what, reports.NOTEBOOK_HINT), name="matplotlib") from error
    return pyplot


def _short(name):
    for prefix in ("model.layers.", "encoder.layer.", "base_model.model."):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name[:-len(".weight")] if name.endswith(".weight") else name


def _values(layers, column):
    values = []
    for layer in layers:
        value = layer.get(column) if isinstance(layer, dict) else None
        values.append(float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("nan"))
    return values


def layer_errors(report, *, title=None, log=None, sort=True, figsize=None):
    """A bar chart of a per-layer report, one panel per kind of error; returns the Figure.

    ``report``: a result of initAdapter (before/after per layer), quantize (relative error),
    evaluate (weightError/outputError), extractAdapter or merge, or its ``layers`` list.
    ``log``: logarithmic error axis (default: when the values span more than two decades).
    ``sort``: layers in block order, numbers compared as numbers (``False``: as reported).
    Needs matplotlib."""
    pyplot = _pyplot("loquat.plot.layer_errors")
    layers, meta, kind = reports.report_layers(report)
    if sort:
        layers = sorted(layers, key=_natural_key)
    if not layers:
        raise ValueError("the %s report has no layers to plot" % kind)
    panels = []
    for heading, group in _PANELS.get(kind, []):
        drawn = [(label, _values(layers, column)) for column, label in group
                 if any(value == value for value in _values(layers, column))]
        if drawn:
            panels.append((heading, drawn))
    if not panels:
        raise ValueError("no per-layer error columns to plot in this %s report (columns: %s)"
                         % (kind, ", ".join(sorted(reports._columns(layers)))))
    count = len(layers)
    width = min(max(6.0, 0.22 * count + 2.0), 18.0)
    figure, axes = pyplot.subplots(len(panels), 1, squeeze=False, sharex=True,
                                   figsize=figsize or (width, 2.0 + 2.4 * len(panels)))
    positions = list(range(count))
    for axis, (heading, drawn) in zip(axes[:, 0], panels):
        bar_width = 0.8 / len(drawn)
        for index, (label, values) in enumerate(drawn):
            offset = (index - (len(drawn) - 1) / 2) * bar_width
            axis.bar([p + offset for p in positions], values, bar_width, label=label)
        finite = [v for _, values in drawn for v in values if v == v and v > 0]
        use_log = log if log is not None else bool(finite) and max(finite) / min(finite) > 100
        if use_log:
            axis.set_yscale("log")
        axis.set_ylabel(heading.split(" ‖")[0])
        axis.set_title(heading, fontsize="small", loc="left")
        axis.grid(axis="y", alpha=0.3)
        if len(drawn) > 1:
            axis.legend(fontsize="small", loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=len(drawn),
                        frameon=False, borderaxespad=0.2)
    step = max(1, -(-count // _MAX_TICK_LABELS))
    bottom = axes[-1, 0]
    bottom.set_xticks(positions[::step])
    bottom.set_xticklabels([_short(layers[p].get("name", str(p))) for p in positions[::step]],
                           rotation=90, fontsize="x-small")
    bottom.set_xlim(-0.6, count - 0.4)
    if title is None:
        subject = meta.get("adapter") or meta.get("model") or ""
        method = meta.get("method") or ""
        title = " ".join(part for part in (kind, str(method), str(subject)) if part)
        if kind == "quantize" and isinstance(meta.get("bitsPerWeight"), (int, float)):
            title += " (%.3g bits per weight)" % meta["bitsPerWeight"]
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def sweep(results, *, x="bitsPerWeight", y="perplexity", series="adapter", label="quantizer", reference=None,
          reference_label="full precision", title=None, log=None, figsize=(7.5, 5.0)):
    """Perplexity against bits per weight, one line (with standard-error bars) per adapter method;
    returns the Figure.

    ``results``: dicts (or a DataFrame) with ``x`` (default ``bitsPerWeight``, from quantize),
    ``y`` (default ``perplexity``: a number or evaluate's ``{value, standardError}``, or a number
    with ``perplexityStandardError``), ``series`` (default ``adapter``: e.g. None, "loftq",
    "cloq"; None draws as "none") and an optional ``label`` per point (default ``quantizer``,
    e.g. "nf4"), written beside the points of the first series. ``reference``: the
    full-precision perplexity (a number or an evaluate result), drawn as a dashed line named
    ``reference_label``. ``log``:
    logarithmic perplexity axis (default: when the values span more than a decade). Needs
    matplotlib."""
    pyplot = _pyplot("loquat.plot.sweep")
    rows = reports.sweep_rows(results, x, y, series, label)
    if not rows:
        raise ValueError("no sweep results to plot")
    groups = {}
    for row in rows:
        groups.setdefault(row["series"], []).append(row)
    figure, axis = pyplot.subplots(figsize=figsize)
    markers = "osD^vP*X"
    for index, (name, members) in enumerate(groups.items()):
        members.sort(key=lambda row: row["x"])
        errors = [row["yerr"] if row["yerr"] is not None else 0.0 for row in members]
        axis.errorbar([row["x"] for row in members], [row["y"] for row in members],
                      yerr=errors if any(errors) else None, marker=markers[index % len(markers)],
                      capsize=3, label=name)
        if index == 0:
            for row in members:
                if row["label"]:
                    axis.annotate(row["label"], (row["x"], row["y"]), textcoords="offset points",
                                  xytext=(4, 6), fontsize="small")
    if reference is not None:
        if isinstance(reference, dict) and y in reference:
            reference = reference[y]
        value = reports._number(reference)
        axis.axhline(value, color="grey", linestyle="--", linewidth=1, label="%s (%.4g)" % (reference_label, value))
    values = [row["y"] for row in rows if row["y"] > 0]
    if log if log is not None else bool(values) and max(values) / min(values) > 10:
        axis.set_yscale("log")
    axis.set_xlabel("bits per weight" if x == "bitsPerWeight" else x)
    axis.set_ylabel(y)
    axis.grid(alpha=0.3)
    axis.legend(title=series)
    axis.set_title(title if title is not None else "%s against %s" % (y, "bits per weight" if x == "bitsPerWeight" else x))
    figure.tight_layout()
    return figure
