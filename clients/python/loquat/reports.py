"""Per-layer reports as tables: ``to_dataframe(result)`` (pandas, an optional dependency).

Every method that works layer by layer returns a ``layers`` list: ``quantize`` (the error
ledger: relativeError, maxAbsError, sqnrDb, bitsPerWeight, …), ``initAdapter``
(weightErrorBefore/After, outputErrorBefore/After, …), ``merge`` (under ``report.layers``),
``extractAdapter`` (rank, energyRetained, relativeError) and ``evaluate`` with the
weightError/outputError metrics (also ``quantize/plan``, ``calibrate``, ``adapter/load``).
``to_dataframe`` gives one row per layer, nested values flattened to dotted columns
(``rotate.seed``), the top-level scalars of the result in ``DataFrame.attrs`` and
``attrs["kind"]`` naming the method the report came from.

``sweep_to_dataframe(results)`` tabulates the rows of a sweep (one dict per configuration, see
``loquat.plot.sweep``).
"""

__all__ = ["to_dataframe", "sweep_to_dataframe", "report_kind", "report_layers"]

NOTEBOOK_HINT = "pip install 'loquat[notebook]' (pandas, matplotlib, tqdm)"


def _require_pandas(what):
    try:
        import pandas
    except ImportError as error:
        raise ImportError("%s needs pandas, which is not installed: %s, or pip install pandas"
                          % (what, NOTEBOOK_HINT), name="pandas") from error
    return pandas


def report_kind(report):
    """The method a report came from: "quantize", "quantize/plan", "initAdapter", "merge",
    "extractAdapter", "evaluate", "calibrate", "adapter/load", or "layers" for a bare list."""
    if isinstance(report, (list, tuple)):
        return _kind_from_layers(report)
    if not isinstance(report, dict):
        raise TypeError("expected a result dict or a list of layer dicts, not %s" % type(report).__name__)
    if "report" in report and isinstance(report["report"], dict):
        return "merge"
    if "finetuned" in report:
        return "extractAdapter"
    if "budgetBitsPerWeight" in report:
        return "quantize/plan"
    if "calibration" in report and "windowCount" in report:
        return "calibrate"
    if "adapter" in report and "weightErrorBefore" in _columns(report.get("layers")):
        return "initAdapter"
    if "bitsPerWeight" in report and "source" in report:
        return "quantize"
    if any(key in report for key in ("weightError", "outputError", "perplexity", "kld", "embeddingCosine")):
        return "evaluate"
    if "adapter" in report and "inputWidth" in _columns(report.get("layers")):
        return "adapter/load"
    if "layers" in report and "strategy" in _columns(report.get("layers")):
        return "merge"  # a merge's report dict on its own
    return _kind_from_layers(report.get("layers") or [])


def _columns(layers):
    names = set()
    for layer in layers or []:
        if isinstance(layer, dict):
            names.update(layer)
    return names


def _kind_from_layers(layers):
    columns = _columns(layers)
    if "weightErrorBefore" in columns:
        return "initAdapter"
    if "sqnrDb" in columns:
        return "quantize"
    if "energyRetained" in columns:
        return "extractAdapter"
    if "weightError" in columns or "outputError" in columns:
        return "evaluate"
    if "adapterLoss" in columns or "truncationError" in columns or "strategy" in columns:
        return "merge"
    return "layers"


def report_layers(report):
    """The per-layer list of a result (``layers``, or a merge's ``report.layers``), the result's
    top-level scalar fields, and its kind. Raises ValueError for a result without layers."""
    kind = report_kind(report)
    if isinstance(report, (list, tuple)):
        return list(report), {}, kind
    holder = report["report"] if kind == "merge" and isinstance(report.get("report"), dict) else report
    layers = holder.get("layers")
    if not isinstance(layers, list):
        raise ValueError("this %s result has no per-layer report (no `layers` list); keys: %s"
                         % (kind, ", ".join(sorted(report))))
    meta = {key: value for key, value in report.items()
            if key != "layers" and (value is None or isinstance(value, (str, int, float, bool)))}
    for key in ("summary", "perplexity", "weightError", "outputError"):
        value = holder.get(key) if key == "summary" else report.get(key)
        if isinstance(value, dict):
            meta.update(("%s.%s" % (key, inner), item) for inner, item in value.items()
                        if item is None or isinstance(item, (str, int, float, bool)))
    return layers, meta, kind


def _flatten(row, prefix="", into=None):
    into = {} if into is None else into
    for key, value in row.items():
        name = prefix + key
        if isinstance(value, dict) and value:
            _flatten(value, name + ".", into)
        elif isinstance(value, list):
            into[name] = tuple(value)  # shapes stay one hashable cell
        else:
            into[name] = value
    return into


def to_dataframe(report):
    """One row per layer of a per-layer report, as a ``pandas.DataFrame``.

    ``report`` is a result of quantize, initAdapter, merge, extractAdapter, evaluate
    (weightError/outputError), quantize/plan, calibrate or adapter/load — or its ``layers`` list.
    Columns keep the protocol's names (``name``, ``relativeError``, ``weightErrorAfter``, …) in
    the order they first appear; nested objects become dotted columns, lists (``shape``) tuples.
    ``df.attrs`` holds the result's top-level scalars (``model``, ``bitsPerWeight``, …, and
    ``summary.*``) and ``kind``. Needs pandas (``pip install 'loquat[notebook]'``)."""
    pandas = _require_pandas("loquat.reports.to_dataframe")
    layers, meta, kind = report_layers(report)
    rows = [_flatten(layer) if isinstance(layer, dict) else {"value": layer} for layer in layers]
    columns = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    frame = pandas.DataFrame(rows, columns=columns)
    frame.attrs.update(meta)
    frame.attrs["kind"] = kind
    return frame


def _number(value, key="value"):
    """A float from a number or a ``{value, standardError}``-style dict; None when absent."""
    if isinstance(value, dict):
        value = value.get(key)
    if value is None:
        return None
    return float(value)


def sweep_rows(results, x="bitsPerWeight", y="perplexity", series="adapter", label="quantizer"):
    """Normalises sweep results (dicts, or a DataFrame's records) to dicts with float ``x``,
    ``y``, ``yerr`` (or None), and ``series``/``label`` strings. ``y`` may be a number or an
    evaluate ``perplexity`` dict (``{value, standardError}``); ``<y>StandardError`` also gives
    the error bar."""
    if hasattr(results, "to_dict"):
        results = results.to_dict("records")
    rows = []
    for index, result in enumerate(results):
        if not isinstance(result, dict):
            raise TypeError("sweep results are dicts (or DataFrame rows), got %s at %d" % (type(result).__name__, index))
        missing = [key for key in (x, y) if result.get(key) is None]
        if missing:
            raise ValueError("sweep result %d has no %s; keys: %s" % (index, " or ".join(missing), ", ".join(sorted(result))))
        value = result[y]
        error = _number(value, "standardError") if isinstance(value, dict) else _number(result.get(y + "StandardError"))
        name = result.get(series)
        rows.append({"x": _number(result[x]), "y": _number(value), "yerr": error,
                     "series": "none" if name in (None, "") or name != name else str(name),
                     "label": None if result.get(label) is None else str(result.get(label))})
    return rows


def sweep_to_dataframe(results, x="bitsPerWeight", y="perplexity", series="adapter", label="quantizer"):
    """The sweep as a DataFrame with columns ``label`` (e.g. the quantizer), ``series`` (e.g. the
    adapter method), ``x``, ``y`` and ``yerr``, renamed to the given keys. Needs pandas."""
    pandas = _require_pandas("loquat.reports.sweep_to_dataframe")
    rows = sweep_rows(results, x, y, series, label)
    frame = pandas.DataFrame(rows, columns=["label", "series", "x", "y", "yerr"])
    return frame.rename(columns={"label": label, "series": series, "x": x, "y": y, "yerr": y + "StandardError"})
