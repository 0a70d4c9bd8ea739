#!/usr/bin/env python3
"""mergekit's `extract_lora` (full SVD per layer) timed on the CPU: the peer of Loquat's extractAdapter.

Usage: python3 scripts/bench/mergekit_extract.py --model FT --base-model BASE --out-path OUT
                                                 [--max-rank 16] [--threads 2]
       python3 scripts/bench/mergekit_extract.py --compare --model FT --base-model BASE ADAPTER_DIR...

The first form runs mergekit's own click command `mergekit-extract-lora --model FT --base-model BASE
--out-path OUT --max-rank R --num-threads T` in this process (torch.set_num_threads(T); the driver
also sets OMP_NUM_THREADS) and prints one JSON line: `seconds` from the start of this process
(interpreter, torch and mergekit imports included) to the adapter written, `runSeconds` of the
command alone, and `svdSeconds`, the summed wall time of mergekit's TaskVectorDecompositionTask
(torch.linalg.svd of ΔW in fp32, full_matrices=False, and the split into A and B), measured by
wrapping its `execute`; mergekit logs no phase times itself. mergekit also writes the tied
embedding at full rank as `modules_to_save` (its default for embeddings), which is part of its time.

The second form needs no torch: per linear layer of each PEFT adapter directory (ours and mergekit's),
‖ΔW − s·B·A‖_F / ‖ΔW‖_F with ΔW = W_ft − W_base from the two safetensors directories, s =
lora_alpha / r (with the adapter's rank/alpha patterns); prints one JSON line per adapter with the
mean and maximum over its layers.

PyPI's torch needs CUDA stand-ins on this machine: torch_cpu.import_torch re-runs the script with
them. If torch or mergekit is missing it prints one line with "skipped" and exits 0.
"""
import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

PEER = "mergekit.extract_lora"


def skipped(reason):
    print(json.dumps({"peer": PEER, "skipped": reason}), flush=True)
    sys.exit(0)


def run_mergekit(args):
    from torch_cpu import import_torch
    torch = import_torch("mergekit_extract.py")
    if torch is None:
        skipped("torch is not installed")
    torch.set_num_threads(args.threads)
    try:
        from importlib.metadata import version
        from mergekit.scripts import extract_lora
    except ImportError as error:
        skipped(f"mergekit cannot be imported: {error}")
    svd = {"seconds": 0.0, "layers": 0}
    execute = extract_lora.TaskVectorDecompositionTask.execute

    def timed_execute(self, task_vector):
        start = time.perf_counter()
        try:
            return execute(self, task_vector)
        finally:
            svd["seconds"] += time.perf_counter() - start
            svd["layers"] += 1

    extract_lora.TaskVectorDecompositionTask.execute = timed_execute
    imported = time.perf_counter()
    extract_lora.main.main(["--model", args.model, "--base-model", args.base_model, "--out-path", args.out_path,
                            "--max-rank", str(args.max_rank), "--num-threads", str(args.threads)], standalone_mode=False)
    done = time.perf_counter()
    print(json.dumps({"peer": PEER, "mergekitVersion": version("mergekit"), "torchVersion": torch.__version__,
                      "threads": torch.get_num_threads(), "seconds": done - STARTED, "importSeconds": imported - STARTED,
                      "runSeconds": done - imported, "svdSeconds": svd["seconds"], "svdLayers": svd["layers"]}), flush=True)


def load_tensors(directory):
    from safetensors.numpy import load_file
    tensors = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".safetensors"):
            tensors.update(load_file(os.path.join(directory, name)))
    return tensors


def compare(args):
    import numpy as np
    base = load_tensors(args.base_model)
    finetuned = load_tensors(args.model)
    for adapter_dir in args.adapters:
        with open(os.path.join(adapter_dir, "adapter_config.json")) as source:
            config = json.load(source)
        tensors = load_tensors(adapter_dir)
        errors = []
        for key in sorted(tensors):
            if not key.endswith(".lora_A.weight"):
                continue
            module = key[len("base_model.model."):-len(".lora_A.weight")]
            a = tensors[key].astype(np.float64)
            b = tensors[key.replace(".lora_A.", ".lora_B.")].astype(np.float64)
            rank = config.get("rank_pattern", {}).get(module, config["r"])
            alpha = config.get("alpha_pattern", {}).get(module, config["lora_alpha"])
            scale = alpha / (rank ** 0.5 if config.get("use_rslora") else rank)
            delta = finetuned[module + ".weight"].astype(np.float64) - base[module + ".weight"].astype(np.float64)
            norm = np.linalg.norm(delta)
            errors.append(float(np.linalg.norm(delta - scale * (b @ a)) / norm) if norm > 0 else 0.0)
        print(json.dumps({"adapter": adapter_dir, "layers": len(errors), "meanRelativeError": float(np.mean(errors)) if errors else None,
                          "maxRelativeError": max(errors) if errors else None}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the fine-tuned HF directory")
    parser.add_argument("--base-model", required=True, help="the base HF directory")
    parser.add_argument("--out-path", help="where mergekit writes its adapter")
    parser.add_argument("--max-rank", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compare", action="store_true", help="measure ‖ΔW − sBA‖/‖ΔW‖ of the ADAPTER_DIRs instead")
    parser.add_argument("adapters", nargs="*", metavar="ADAPTER_DIR")
    args = parser.parse_args()
    if args.compare:
        compare(args)
    else:
        if not args.out_path:
            parser.error("--out-path is required")
        run_mergekit(args)


if __name__ == "__main__":
    main()
