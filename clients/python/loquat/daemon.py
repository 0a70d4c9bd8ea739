"""``loquat.Daemon``: the notebook-facing client, one typed method per RPC with progress bars.

    import loquat
    with loquat.Daemon() as d:                 # path argument, $LOQUAT_DAEMON, $LOQUATD or PATH
        d.load("SmolLM2-135M-Instruct.Q4_1.gguf", name="base")
        q = d.quantize("base", "nf", bits=2, name="nf2")     # a tqdm bar while it runs
        print(q["bitsPerWeight"])

Keyword arguments are snake_case and map to the protocol's camelCase params
(``group_size`` → ``groupSize``); ``None`` leaves a param out, so the daemon's default applies.
Wherever a handle is expected, the result dict that carries it is accepted too (``load``'s
result for a model, ``calibrate``'s for a calibration, ``init_adapter``'s for an adapter).
Further keywords, for params newer than this client, are passed on camelCased; the daemon
refuses unknown ones with -32602 naming them, so a typo never falls back to a default.

Errors: ``LoquatError`` with ``code``, ``message`` and ``data`` (``data["param"]`` names the
offending param); ``DaemonExited`` when the daemon dies mid-call; ``DaemonNotFound`` (also a
``FileNotFoundError``) when there is no daemon to start.

Progress: every method that runs for a while takes ``progress`` — ``True`` shows ``$/progress``
as a ``tqdm.auto`` bar (a widget in Jupyter, text in a terminal; nothing when tqdm is not
installed), ``False`` shows nothing, a callable receives each progress value dict
(``{"kind": "begin"|"report"|"end", "percentage", "message", ...}``); ``None`` (the default)
takes the ``progress`` given to the constructor. Ctrl-C (KeyboardInterrupt) during a call
sends ``$/cancelRequest`` for it and re-raises; the daemon stops the work at its next check and
keeps serving.
"""

import os

from .client import Client, _adapter_handle, _camel, _model_handle

__all__ = ["Daemon"]

_SPECIAL_NAMES = {"use_rslora": "useRSLoRA", "use_dora": "useDoRA"}


def _param_name(key):
    return _SPECIAL_NAMES.get(key) or _camel(key)


def _calibration_handle(calibration):
    return calibration["calibration"] if isinstance(calibration, dict) else calibration


def _patterns(value):
    """A glob pattern or a list of them (tuples and other iterables become lists)."""
    if value is None or isinstance(value, str):
        return value
    return list(value)


def _tqdm_class():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class _ProgressBar:
    """A ``$/progress`` consumer drawing one tqdm bar (0–100 %) per call, created at ``begin``."""

    FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}"

    def __init__(self, tqdm, description):
        self._tqdm = tqdm
        self._description = description
        self._bar = None

    def __call__(self, value):
        kind = value.get("kind")
        if self._bar is None:
            title = value.get("title") if kind == "begin" else None
            self._bar = self._tqdm(total=100, desc=title or self._description, bar_format=self.FORMAT, leave=False)
        message = value.get("message")
        if kind == "report" and message:
            self._bar.set_postfix_str(message, refresh=False)
        percentage = value.get("percentage")
        if isinstance(percentage, (int, float)) and not isinstance(percentage, bool) and percentage > self._bar.n:
            self._bar.update(min(percentage, 100) - self._bar.n)  # redraws
        elif kind == "report":
            self._bar.refresh()

    def close(self, finished):
        if self._bar is None:
            return
        if finished and self._bar.n < 100:
            self._bar.update(100 - self._bar.n)
        self._bar.close()
        self._bar = None


class Daemon(Client):
    """Starts ``loquatd`` and drives it; a ``Client`` with one typed method per RPC.

    ``Daemon(path=None, *, progress=True, args=(), env=None, stderr=None, timeout=None,
    stop_timeout=10.0)``: ``path`` is the daemon binary (else ``$LOQUAT_DAEMON``, else
    ``$LOQUATD``, else ``loquatd`` on PATH; ``DaemonNotFound`` names what was tried).
    ``progress`` is the default for every long call (see the module docstring), ``timeout`` the
    default for every call: seconds without a response or a progress notification after which
    the call is cancelled and ``TimeoutError`` raised (``None``: wait forever).

    Use it as a context manager (``with loquat.Daemon() as d: ...``) or call ``close()``;
    either way the daemon also exits when this Python process does (it watches our process id
    and its stdin), so a kernel restart never leaves one behind.
    """

    def __init__(self, path=None, *, progress=True, args=(), env=None, stderr=None, timeout=None,
                 initialize=True, stop_timeout=10.0):
        if not (isinstance(progress, bool) or callable(progress)):
            raise TypeError("progress must be True, False or a callable, not %r" % (progress,))
        self.progress = progress
        self.timeout = timeout
        super().__init__(path, args=args, env=env, stderr=stderr, initialize=initialize, stop_timeout=stop_timeout)

    def __repr__(self):
        state = "running" if self.returncode is None else "exited %s" % self.returncode
        return "<loquat.Daemon pid %d %s>" % (self.pid, state)

    # -- plumbing --------------------------------------------------------------------------

    def _run(self, method, body, params, progress=None, timeout=None):
        """Sends ``body`` plus ``params`` (snake_case keywords → camelCase, None dropped)."""
        if "on_progress" in params:  # Client's spelling
            on_progress = params.pop("on_progress")
            progress = progress if on_progress is None else on_progress
        for key, value in params.items():
            if value is not None:
                body[_param_name(key)] = value
        if progress is None:
            progress = self.progress
        if timeout is None:
            timeout = self.timeout
        bar = None
        if progress is True:
            tqdm = _tqdm_class()
            callback = bar = _ProgressBar(tqdm, method) if tqdm is not None else None
        elif progress is False:
            callback = None
        elif callable(progress):
            callback = progress
        else:
            raise TypeError("progress must be True, False or a callable, not %r" % (progress,))
        finished = False
        try:
            result = self.request(method, body, on_progress=callback, timeout=timeout)
            finished = True
            return result
        finally:
            if bar is not None:
                bar.close(finished)

    # -- lifecycle -------------------------------------------------------------------------

    def initialize(self, *, process_id=None, client_info=None, locale=None, root_uri=None,
                   initialization_options=None, capabilities=None, trace=None, workspace_folders=None,
                   timeout=None, **extra):
        """``initialize`` (sent once by the constructor; later calls return the first result).

        Params: ``process_id`` (processId, default this process: the daemon exits when it is
        gone), ``client_info`` (clientInfo, default ``{"name": "loquat-python"}``), ``locale``,
        ``root_uri`` (rootUri), ``initialization_options`` (initializationOptions),
        ``capabilities``, ``trace``, ``workspace_folders`` (workspaceFolders): LSP-style,
        accepted and ignored. Returns ``{capabilities, serverInfo, versions, runtime}``."""
        if self.server_info is None:
            body = {"processId": os.getpid() if process_id is None else process_id,
                    "clientInfo": client_info or {"name": "loquat-python"}}
            self.server_info = self._run("initialize", body, dict(
                locale=locale, root_uri=root_uri, initialization_options=initialization_options,
                capabilities=capabilities, trace=trace, workspace_folders=workspace_folders, **extra),
                progress=False, timeout=timeout)
        return self.server_info

    # -- models ----------------------------------------------------------------------------

    def load(self, path, name=None, *, progress=None, timeout=None, **extra):
        """``model/load``: map a checkpoint and register it.

        Params: ``path`` — a ``.safetensors`` file, a Hugging Face directory (sharded or not) or
        a ``.gguf`` file; ``name`` — the handle (default ``model-N``; a name in use is -32602).
        Returns ``{model, path, format, architecture, tensorCount, parameterCount, byteCount}``."""
        return self._run("model/load", {"path": os.fspath(path)}, dict(name=name, **extra), progress, timeout)

    def info(self, model, *, timeout=None, **extra):
        """``model/info``: ``model`` (a handle) → the load summary plus ``tensors`` (name, shape,
        dtype, byteCount; quantized layers with bits, groupSize, bitsPerWeight, relativeError) and
        ``config``."""
        return self._run("model/info", {"model": _model_handle(model)}, extra, False, timeout)

    def list_models(self, *, timeout=None):
        """``model/list``: the resident models' summaries, in load order (the ``models`` list)."""
        return self._run("model/list", {}, {}, False, timeout)["models"]

    def unload(self, model, *, timeout=None):
        """``model/unload``: drop ``model``. A model that resident quantized models were made from
        is refused (-32602 ``model``, ``data["dependents"]``) until they are unloaded."""
        return self._run("model/unload", {"model": _model_handle(model)}, {}, False, timeout)

    def save(self, model, path, *, format=None, dtype=None, overwrite=None, progress=None, timeout=None, **extra):
        """``model/save``: write ``model`` to ``path``, atomically, with ``loquat.json`` provenance.

        Params: ``format`` — ``"safetensors"`` (default unless ``path`` ends in ``.gguf``),
        ``"gguf"``, and for a quantized model ``"bnb"`` or ``"loquat"``; ``dtype`` — F32/F16/BF16
        (safetensors) or a GGUF type (F16, Q8_0, Q4_0, …, Q2_K…Q6_K); ``overwrite`` — replace an
        existing output. Returns ``{model, path, format, files, tensorCount, byteCount}``."""
        return self._run("model/save", {"model": _model_handle(model), "path": os.fspath(path)},
                         dict(format=format, dtype=dtype, overwrite=overwrite, **extra), progress, timeout)

    def unmerge(self, model, *, name=None, timeout=None, **extra):
        """``model/unmerge``: take the adapter out of ``model`` (made by ``merge(into="full")``)
        as a new model ``name``. Returns ``{model, source, layerCount}``."""
        return self._run("model/unmerge", {"model": _model_handle(model)}, dict(name=name, **extra), False, timeout)

    # -- quantization ----------------------------------------------------------------------

    def quantize(self, model, method=None, *, bits=None, group_size=None, symmetric=None, double_quant=None,
                 clip_search=None, fp8_format=None, rotate=None, outliers=None, targets=None, exclude=None,
                 calibration=None, plan=None, name=None, progress=None, timeout=None, **extra):
        """``quantize``: a new resident quantized model from ``model``, with a per-layer error ledger.

        Params: ``method`` — nf4, fp4, nf, int, fp8, hqq, gptq (required unless ``plan``);
        ``bits`` (default 4; fp8 8); ``group_size`` (groupSize, default 64; 0 = per channel);
        ``symmetric``, ``clip_search`` (clipSearch) for int/hqq/gptq; ``double_quant``
        (doubleQuant) for nf4/fp4; ``fp8_format`` (fp8Format: "e4m3"|"e5m2"); ``rotate``
        ("hadamard" or ``{"kind": "hadamard", "seed": n}``); ``outliers`` (``{"fraction": f}`` or
        ``{"threshold": t}``); ``targets``/``exclude`` (glob patterns over tensor names);
        ``calibration`` (a ``calibrate`` handle: GPTQ needs it, every layer then has
        outputRelativeError); ``plan`` (per-layer specs, e.g. ``quantize_plan(...)["plan"]``);
        ``name`` (default ``<source>-<method><bits>``).
        Returns ``{model, source, bitsPerWeight, byteCount, layers: [ledger entry], seconds}``;
        ``loquat.reports.to_dataframe`` turns the ledger into a table."""
        body = {"model": _model_handle(model)}
        if method is not None:
            body["method"] = method
        return self._run("quantize", body, dict(
            bits=bits, group_size=group_size, symmetric=symmetric, double_quant=double_quant, clip_search=clip_search,
            fp8_format=fp8_format, rotate=rotate, outliers=outliers, targets=_patterns(targets),
            exclude=_patterns(exclude), calibration=_calibration_handle(calibration), plan=plan, name=name, **extra),
            progress, timeout)

    def quantize_plan(self, model, budget_bits_per_weight, candidates, *, targets=None, exclude=None,
                      progress=None, timeout=None, **extra):
        """``quantize/plan``: per-layer formats minimising the summed error under a budget.

        Params: ``budget_bits_per_weight`` (budgetBitsPerWeight) — average stored bits per
        weight over the planned layers; ``candidates`` — quantization specs
        (``[{"method": "int", "bits": 4}, ...]``); ``targets``/``exclude``. Returns ``{model, plan,
        predictedError, bitsPerWeight, budgetBitsPerWeight, layers, seconds}``; pass ``plan`` to
        ``quantize(model, plan=...)``."""
        body = {"model": _model_handle(model), "budgetBitsPerWeight": budget_bits_per_weight,
                "candidates": list(candidates)}
        return self._run("quantize/plan", body, dict(targets=_patterns(targets), exclude=_patterns(exclude), **extra),
                         progress, timeout)

    def calibrate(self, model, *, text=None, text_file=None, context_length=None, sample_count=None, seed=None,
                  targets=None, name=None, progress=None, timeout=None, **extra):
        """``calibrate``: per-linear input statistics (fp64 Gram XᵀX, mean |x|, RMS) of ``model``.

        Params: ``text`` or ``text_file`` (textFile, a UTF-8 file); ``context_length``
        (contextLength, window length in tokens, default 512); ``sample_count`` (sampleCount, at
        most this many windows); ``seed``; ``targets``; ``name`` (the handle). Returns
        ``{calibration, model, tokenCount, windowCount, layers, seconds}``; pass it (or its
        ``calibration`` handle) to ``quantize``, ``init_adapter`` or ``evaluate``."""
        if text_file is not None:
            text_file = os.fspath(text_file)
        return self._run("calibrate", {"model": _model_handle(model)}, dict(
            text=text, text_file=text_file, context_length=context_length, sample_count=sample_count, seed=seed,
            targets=_patterns(targets), name=name, **extra), progress, timeout)

    def evaluate(self, model, metrics=("perplexity",), *, adapter=None, reference=None, calibration=None, text=None,
                 text_file=None, context_length=None, max_chunks=None, scoring=None, progress=None, timeout=None,
                 **extra):
        """``evaluate``: perplexity, KLD / top-1 / Δp against a reference, per-layer errors.

        Params: ``metrics`` — a name or a list of perplexity, kld, top1Agreement,
        deltaProbability, weightError, outputError, embeddingCosine; ``adapter`` — a resident
        adapter applied unmerged; ``reference`` — the model to compare with (kld & co.; weightError
        defaults to the source); ``calibration`` — for outputError; ``text`` or ``text_file``
        (textFile); ``context_length`` (contextLength, default 512); ``max_chunks`` (maxChunks);
        ``scoring`` ("all", Hugging Face, or "second-half", llama.cpp). Returns ``{model,
        perplexity?: {value, standardError, ...}, kld?, layers?, weightError?, ..., seconds}``."""
        if isinstance(metrics, str):
            metrics = [metrics]
        if text_file is not None:
            text_file = os.fspath(text_file)
        body = {"model": _model_handle(model), "metrics": list(metrics)}
        return self._run("evaluate", body, dict(
            adapter=None if adapter is None else _adapter_handle(adapter),
            reference=None if reference is None else _model_handle(reference),
            calibration=_calibration_handle(calibration), text=text, text_file=text_file,
            context_length=context_length, max_chunks=max_chunks, scoring=scoring, **extra), progress, timeout)

    # -- adapters --------------------------------------------------------------------------

    def init_adapter(self, model, method, rank, *, base=None, alpha=None, use_rslora=None, use_dora=None,
                     iterations=None, calibration=None, targets=None, exclude=None, rank_pattern=None,
                     alpha_pattern=None, seed=None, svd=None, damping=None, candidates=None,
                     activation_weighted=None, name=None, model_name=None, progress=None, timeout=None, **extra):
        """``initAdapter``: a quantization-compensating LoRA adapter per layer of ``model``.

        Params: ``method`` — lora, gaussian, pissa, olora, loftq, lqer, qera-approx, cloq,
        quailora, lq-lora, qa-lora, auto; ``rank``; ``base`` (the full-precision weights, default
        the model ``model`` was quantized from); ``alpha`` (default rank); ``use_rslora``
        (useRSLoRA); ``use_dora`` (useDoRA); ``iterations`` (loftq 5, pissa 1, lq-lora and
        quailora 10); ``calibration`` (needed by lqer, qera-approx, cloq, quailora; gives output
        errors for every method); ``targets``/``exclude``; ``rank_pattern``/``alpha_pattern``
        (rankPattern/alphaPattern, PEFT's); ``seed``; ``svd`` ("exact"|"randomized");
        ``damping``; ``candidates`` (auto's); ``activation_weighted`` (activationWeighted,
        lq-lora); ``name`` (the adapter's handle); ``model_name`` (modelName, the new base's handle
        for methods that replace it). Returns ``{adapter, model, base, method, rank, alpha, ...,
        modelChanged, layers: [{name, weightErrorBefore, weightErrorAfter, ...}], summary,
        seconds}`` — ``model`` is the base to evaluate the adapter on."""
        body = {"model": _model_handle(model), "method": method, "rank": rank}
        return self._run("initAdapter", body, dict(
            base=None if base is None else _model_handle(base), alpha=alpha, use_rslora=use_rslora, use_dora=use_dora,
            iterations=iterations, calibration=_calibration_handle(calibration), targets=_patterns(targets),
            exclude=_patterns(exclude), rank_pattern=rank_pattern, alpha_pattern=alpha_pattern, seed=seed, svd=svd,
            damping=damping, candidates=None if candidates is None else list(candidates),
            activation_weighted=activation_weighted, name=name, model_name=model_name, **extra), progress, timeout)

    def save_adapter(self, adapter, path, *, format=None, overwrite=None, base_model_name_or_path=None,
                     progress=None, timeout=None, **extra):
        """``adapter/save``: write ``adapter`` as a PEFT directory at ``path``, read it back and
        compare ΔW. Params: ``format`` ("peft"), ``overwrite``, ``base_model_name_or_path``
        (baseModelNameOrPath for adapter_config.json). Returns ``{adapter, path, format, files,
        tensorCount, byteCount, maxAbsDeltaDifference}``."""
        return self._run("adapter/save", {"adapter": _adapter_handle(adapter), "path": os.fspath(path)}, dict(
            format=format, overwrite=overwrite, base_model_name_or_path=base_model_name_or_path, **extra),
            progress, timeout)

    def load_adapter(self, path, *, model=None, name=None, progress=None, timeout=None, **extra):
        """``adapter/load``: read a PEFT LoRA directory. Params: ``model`` (check every layer's
        shape against it), ``name`` (the handle). Returns the adapter summary with ``path`` and
        ``layers``."""
        return self._run("adapter/load", {"path": os.fspath(path)}, dict(
            model=None if model is None else _model_handle(model), name=name, **extra), progress, timeout)

    def list_adapters(self, *, timeout=None):
        """``adapter/list``: the resident adapters' summaries (the ``adapters`` list)."""
        return self._run("adapter/list", {}, {}, False, timeout)["adapters"]

    def unload_adapter(self, adapter, *, timeout=None):
        """``adapter/unload``: forget ``adapter``. Returns ``{adapter, unloaded: true}``."""
        return self._run("adapter/unload", {"adapter": _adapter_handle(adapter)}, {}, False, timeout)

    def merge(self, adapters, model=None, *, combination=None, density=None, rank=None, seed=None,
              majority_sign=None, into=None, strategy=None, name=None, sidecar_name=None, progress=None,
              timeout=None, **extra):
        """``merge``: combine adapters, or merge them into ``model``.

        Params: ``adapters`` — handles, ``(handle, weight)`` pairs or ``{"adapter", "weight"}``
        dicts; ``model`` — the model to merge into (with ``into``: "full" or "quantized");
        ``combination`` (linear, cat, svd, ties, dare_linear, dare_ties); ``density``; ``rank``;
        ``seed``; ``majority_sign`` (majoritySign: "total"|"frequency"); ``strategy`` (into
        quantized: auto, requantize, higher-precision, sidecar, exact-zero-point, recompensate,
        or ``[{"pattern", "strategy"}]``); ``name``; ``sidecar_name`` (sidecarName). Returns
        ``{adapter?, model?, into?, source?, sidecar?, report: {layers, summary?}, seconds}``."""
        entries = []
        for entry in adapters:
            if isinstance(entry, tuple):
                entries.append({"adapter": _adapter_handle(entry[0]), "weight": entry[1]})
            elif isinstance(entry, dict) and "weight" in entry:
                entries.append({"adapter": _adapter_handle(entry["adapter"]), "weight": entry["weight"]})
            else:
                entries.append({"adapter": _adapter_handle(entry)})
        body = {"adapters": entries}
        if model is not None:
            body["model"] = _model_handle(model)
        return self._run("merge", body, dict(
            combination=combination, density=density, rank=rank, seed=seed, majority_sign=majority_sign, into=into,
            strategy=strategy, name=name, sidecar_name=sidecar_name, **extra), progress, timeout)

    def extract_adapter(self, base, finetuned, *, rank=None, energy=None, relative_error=None, parameter_budget=None,
                        max_rank=None, targets=None, exclude=None, relative_to=None, quantized=None, svd=None,
                        seed=None, name=None, modules_to_save=None, progress=None, timeout=None, **extra):
        """``extractAdapter``: a LoRA adapter from a fine-tune's delta ``finetuned − base`` (PHLoRA).

        Params: one of ``rank`` (default 16), ``energy`` (fraction kept, in (0, 1]),
        ``relative_error`` (relativeError, in [0, 1)) or ``parameter_budget`` (parameterBudget,
        ranks allocated across layers); ``max_rank`` (maxRank); ``targets``/``exclude``;
        ``relative_to`` (relativeTo: "base"|"quantized") with ``quantized`` (the quantized model
        whose dequantized layers the delta is taken from); ``svd``; ``seed``; ``name``;
        ``modules_to_save`` (modulesToSave: carry changed embeddings/norms whole). Returns
        ``{adapter, base, finetuned, relativeTo, rank, layers: [{name, rank, energyRetained,
        relativeError}], otherDifferences, seconds}``."""
        body = {"base": _model_handle(base), "finetuned": _model_handle(finetuned)}
        return self._run("extractAdapter", body, dict(
            rank=rank, energy=energy, relative_error=relative_error, parameter_budget=parameter_budget,
            max_rank=max_rank, targets=_patterns(targets), exclude=_patterns(exclude), relative_to=relative_to,
            quantized=None if quantized is None else _model_handle(quantized), svd=svd, seed=seed, name=name,
            modules_to_save=modules_to_save, **extra), progress, timeout)
