#!/usr/bin/env python3
"""PEFT fixtures for Loquat's adapters (LoftQ, LoRA/rsLoRA with rank/alpha patterns, DoRA), made by
the real PEFT, transformers, torch and bitsandbytes on the CPU.

Writes under Tests/AdaptersTests/Fixtures/peft/ (see README-peft.md):
  loftq.safetensors            PEFT's `loftq_init` (4-bit: bitsandbytes NF4) on a fixed 64×128 matrix,
                               for rank 4 × 1 iteration, rank 4 × 5 iterations, rank 8 × 2 iterations
  tiny-llama/base/             a seeded 2-layer LlamaForCausalLM, transformers `save_pretrained`
  tiny-llama/adapter-lora/     rsLoRA, all 7 projections, rank_pattern / alpha_pattern, PEFT `save_pretrained`
  tiny-llama/adapter-dora/     DoRA on q_proj/v_proj with perturbed magnitudes, PEFT `save_pretrained`
  tiny-llama/deltas.safetensors  PEFT's `get_delta_weight` per LoRA module, merged weights per DoRA module
  smollm2-manifest.json        adapter_config.json + safetensors header of a r=16 LoRA on SmolLM2-135M's shape

PEFT's `loftq_init` puts its work on "xpu" or "cuda" (a hard-coded choice). This machine has neither,
so `loftq_init_on_cpu` compiles PEFT's own function with that one line changed to `compute_device =
"cpu"`; nothing else of PEFT or bitsandbytes is modified. A pass-through wrapper records every
`bitsandbytes.functional.quantize_4bit` call so the file states which quantizer really ran.

Run (from the repository root; torch needs the CUDA stand-ins of bnb_cuda_stubs.py):
    pip install peft            # 0.21.2; see README-peft.md
    python3 Tests/Generators/bnb_cuda_stubs.py /tmp/cuda-stubs
    LD_LIBRARY_PATH=/tmp/cuda-stubs python3 Tests/Generators/peft_goldens.py
"""
import __future__
import copy
import inspect
import json
import os
import shutil
import struct
import sys
import tempfile
import textwrap

# PEFT keeps target_modules as a set and writes it to adapter_config.json in set order, which follows
# Python's string hashing: a fixed PYTHONHASHSEED makes reruns write the same bytes. HF_HUB_OFFLINE
# stops PEFT's save_pretrained from asking the Hub for SmolLM2's config.json (it only checks
# whether the vocabulary was resized and assumes not when it cannot look).
if os.environ.get("PYTHONHASHSEED") != "0" or os.environ.get("HF_HUB_OFFLINE") != "1":
    os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, PYTHONHASHSEED="0", HF_HUB_OFFLINE="1"))

import numpy as np
import torch

import bitsandbytes
import bitsandbytes.functional as F
import peft
import peft.utils.loftq_utils as loftq_utils
import transformers
from bitsandbytes.backends.default.ops import _dequantize_4bit_compute
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "AdaptersTests", "Fixtures", "peft"))
PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PREFIX = "base_model.model."
LOFTQ_CASES = [("r4_iter1", 4, 1), ("r4_iter5", 4, 5), ("r8_iter2", 8, 2)]

# The one line of peft.utils.loftq_utils.loftq_init that picks the device (PEFT 0.21.2).
DEVICE_LINE = 'compute_device = "xpu" if is_xpu_available() else "cuda"'
CPU_LINE = 'compute_device = "cpu"'


def loftq_init_on_cpu():
    """PEFT's `loftq_init`, recompiled from its own source with DEVICE_LINE replaced by CPU_LINE and
    run in a copy of its module's globals (the installed module is left untouched)."""
    source = textwrap.dedent(inspect.getsource(loftq_utils.loftq_init))
    if source.count(DEVICE_LINE) != 1:
        raise SystemExit(f"peft {peft.__version__}: loftq_init no longer contains {DEVICE_LINE!r}; update the patch")
    source = source.replace(DEVICE_LINE, CPU_LINE)
    namespace = dict(vars(loftq_utils))
    code = compile(source, loftq_utils.__file__, "exec", flags=__future__.annotations.compiler_flag, dont_inherit=True)
    exec(code, namespace)
    return namespace["loftq_init"]


class QuantizeRecorder:
    """Wraps bitsandbytes.functional.quantize_4bit (looked up by Params4bit at call time) and keeps
    each call's input, arguments and returned state; the results pass through unchanged."""

    def __enter__(self):
        self.calls = []
        self.original = F.quantize_4bit

        def recording(A, *args, **kwargs):
            packed, state = self.original(A, *args, **kwargs)
            self.calls.append({"input": A.detach().clone(), "args": args, "kwargs": dict(kwargs),
                               "packed": packed, "state": state})
            return packed, state

        F.quantize_4bit = recording
        return self

    def __exit__(self, *exc):
        F.quantize_4bit = self.original


def nf4_margin(x, state):
    """Smallest distance, in units of the block's absmax, of x/absmax to an NF4 decision midpoint."""
    code = torch.sort(F.get_4bit_type("nf4", device="cpu")).values
    mids = (code[:-1] + code[1:]) / 2
    flat = x.reshape(-1)
    pad = (-flat.numel()) % state.blocksize
    blocks = torch.cat([flat, flat.new_zeros(pad)]).reshape(-1, state.blocksize)
    scaled = blocks / state.absmax.reshape(-1, 1).clamp_min(1e-38)
    return float((scaled.reshape(-1, 1) - mids.reshape(1, -1)).abs().min())


def versions():
    return {"generator": "Tests/Generators/peft_goldens.py", "peft": peft.__version__, "torch": torch.__version__,
            "bitsandbytes": bitsandbytes.__version__, "transformers": transformers.__version__,
            "safetensors": __import__("safetensors").__version__, "numpy": np.__version__,
            "python": sys.version.split()[0]}


def loftq_weight():
    """64×128 float32: N(0, 0.02²) noise + a rank-1 term + 8 outliers (all from torch.manual_seed(0))."""
    torch.manual_seed(0)
    weight = torch.randn(64, 128) * 0.02
    weight += 0.01 * torch.outer(torch.randn(64), torch.randn(128))
    positions = torch.randperm(weight.numel())[:8]
    weight.view(-1)[positions] = torch.tensor([0.25, -0.2, 0.15, -0.3, 0.18, -0.12, 0.22, -0.16])
    return weight.contiguous()


def loftq_fixture():
    loftq_init = loftq_init_on_cpu()
    weight = loftq_weight()
    tensors = {"weight": weight.clone()}
    metadata = dict(versions(), torch_threads=str(torch.get_num_threads()),
                    weight="torch.manual_seed(0); w = randn(64,128)*0.02; w += 0.01*outer(randn(64), randn(128)); "
                           "w.view(-1)[randperm(8192)[:8]] = [0.25,-0.2,0.15,-0.3,0.18,-0.12,0.22,-0.16]",
                    patch=f"peft.utils.loftq_utils.loftq_init recompiled from its source with `{DEVICE_LINE}` "
                          f"replaced by `{CPU_LINE}`; nothing else changed",
                    cases=",".join(name for name, _, _ in LOFTQ_CASES))
    summary = {}
    for name, rank, iterations in LOFTQ_CASES:
        with QuantizeRecorder() as recorder:
            qweight, lora_A, lora_B = loftq_init(weight.clone(), num_bits=4, reduced_rank=rank, num_iter=iterations)
        assert qweight.dtype == lora_A.dtype == lora_B.dtype == torch.float32
        assert qweight.shape == (64, 128) and lora_A.shape == (rank, 128) and lora_B.shape == (64, rank)
        assert len(recorder.calls) == iterations
        settings = set()
        for call in recorder.calls:
            state = call["state"]
            settings.add((call["input"].device.type, str(call["input"].dtype), call["kwargs"].get("blocksize"),
                          call["kwargs"].get("compress_statistics"), call["kwargs"].get("quant_type"),
                          state.blocksize, state.nested, state.quant_type))
        assert settings == {("cpu", "torch.float32", 64, False, "nf4", 64, False, "nf4")}, settings
        last = recorder.calls[-1]
        # The returned Q is bnb's CPU dequantization of the last quantization; compare it with the
        # reference (PyTorch backend) dequantization, code[q] · absmax in float32.
        code = F.get_4bit_type("nf4", device="cpu")
        reference = _dequantize_4bit_compute(last["packed"].reshape(-1), last["state"].absmax.float(), code, 64,
                                             qweight.shape, torch.float32)
        if iterations == 1:
            assert torch.equal(last["input"], weight)
        tensors[f"{name}.qweight"] = qweight.contiguous()
        tensors[f"{name}.lora_A"] = lora_A.contiguous()
        tensors[f"{name}.lora_B"] = lora_B.contiguous()
        # What the last NF4 quantization saw: W for one iteration, W − B·A of the previous iteration otherwise.
        tensors[f"{name}.quantized_input"] = last["input"].contiguous()
        error = float(torch.linalg.norm(weight - qweight - lora_B @ lora_A) / torch.linalg.norm(weight))
        q_error = float(torch.linalg.norm(weight - qweight) / torch.linalg.norm(weight))
        metadata.update({f"{name}.rank": str(rank), f"{name}.num_iter": str(iterations),
                         f"{name}.quantize_4bit": "cpu float32 blocksize=64 compress_statistics=False quant_type=nf4",
                         f"{name}.quantize_calls": str(len(recorder.calls)),
                         f"{name}.cpu_kernel_agrees": str(torch.equal(qweight.view(torch.int32),
                                                                      reference.view(torch.int32))).lower(),
                         f"{name}.relative_error": repr(error), f"{name}.q_relative_error": repr(q_error),
                         f"{name}.nf4_margin": repr(nf4_margin(last["input"], last["state"]))})
        summary[name] = {"relativeError": error, "qOnlyRelativeError": q_error,
                         "cpuKernelAgrees": metadata[f"{name}.cpu_kernel_agrees"]}
    path = os.path.join(OUT, "loftq.safetensors")
    save_file(tensors, path, metadata=metadata)
    return {"file": path, "bytes": os.path.getsize(path), "cases": summary}


def tiny_config():
    return LlamaConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=256, tie_word_embeddings=False, max_position_embeddings=128)


def lora_layers(model):
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, LoraLayer) and "default" in module.lora_A]


def strip(name):
    assert name.startswith(PREFIX), name
    return name[len(PREFIX):]


def drop_readme(directory):
    """PEFT writes a model-card README.md (template boilerplate); the fixtures keep only the adapter files."""
    readme = os.path.join(directory, "README.md")
    if os.path.exists(readme):
        os.remove(readme)


def tiny_llama_fixtures():
    root = os.path.join(OUT, "tiny-llama")
    if os.path.isdir(root):
        shutil.rmtree(root)
    base_dir, lora_dir, dora_dir = (os.path.join(root, d) for d in ("base", "adapter-lora", "adapter-dora"))

    torch.manual_seed(1)
    base = LlamaForCausalLM(tiny_config()).to(torch.float32).eval()
    base.save_pretrained(base_dir, safe_serialization=True)
    saved = load_file(os.path.join(base_dir, "model.safetensors"))
    for key, value in base.state_dict().items():
        assert value.dtype == torch.float32 and torch.equal(saved[key], value), key

    deltas = {}
    # rsLoRA (scaling = alpha / sqrt(r)), a rank and an alpha pattern, B nonzero (init_lora_weights=False).
    lora_config = LoraConfig(r=4, lora_alpha=8, target_modules=list(PROJECTIONS), use_rslora=True,
                             rank_pattern={"down_proj": 2}, alpha_pattern={"v_proj": 16}, init_lora_weights=False,
                             lora_dropout=0.0)
    torch.manual_seed(2)
    lora_model = get_peft_model(copy.deepcopy(base), lora_config)
    expected_scaling = {"v_proj": 16 / 2.0, "down_proj": 8 / 2 ** 0.5}
    for name, module in lora_layers(lora_model):
        kind = name.rsplit(".", 1)[-1]
        assert abs(module.scaling["default"] - expected_scaling.get(kind, 8 / 2.0)) < 1e-12, (name, module.scaling)
        assert module.r["default"] == (2 if kind == "down_proj" else 4)
        deltas[f"lora/{strip(name)}"] = module.get_delta_weight("default").detach().to(torch.float32).contiguous()
    assert len(deltas) == 2 * len(PROJECTIONS)
    lora_model.save_pretrained(lora_dir)
    drop_readme(lora_dir)

    # DoRA: magnitudes start at ‖W + scaling·B·A‖ per row; perturb them so m differs from every norm.
    dora_config = LoraConfig(r=4, lora_alpha=4, use_dora=True, target_modules=["q_proj", "v_proj"],
                             init_lora_weights=False)
    torch.manual_seed(3)
    dora_model = get_peft_model(copy.deepcopy(base), dora_config)
    generator = torch.Generator().manual_seed(4)
    dora_names = []
    with torch.no_grad():
        for name, module in lora_layers(dora_model):
            magnitude = module.lora_magnitude_vector["default"].weight
            magnitude.mul_(1 + 0.05 * torch.randn(magnitude.shape, generator=generator))
            dora_names.append(name)
    assert len(dora_names) == 4
    dora_model.save_pretrained(dora_dir)
    drop_readme(dora_dir)
    merged = dora_model.merge_and_unload()
    for name in dora_names:
        deltas[f"dora/{strip(name)}"] = merged.get_submodule(strip(name)).weight.detach().to(torch.float32).contiguous()

    # Round trip: the saved adapters, loaded by PEFT onto the saved base, give the same tensors.
    reloaded = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float32), lora_dir)
    for name, module in lora_layers(reloaded):
        assert torch.equal(module.get_delta_weight("default"), deltas[f"lora/{strip(name)}"]), name
    reloaded = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float32), dora_dir)
    reloaded = reloaded.merge_and_unload()
    for name in dora_names:
        assert torch.equal(reloaded.get_submodule(strip(name)).weight, deltas[f"dora/{strip(name)}"]), name

    metadata = dict(versions(), lora="PEFT get_delta_weight('default') = (B @ A) * scaling, per adapted module of "
                                     "adapter-lora", dora="weight of each adapted module of adapter-dora after "
                                                          "PeftModel.merge_and_unload()",
                    seeds="base 1, adapter-lora 2, adapter-dora 3, magnitude perturbation 4 "
                          "(m *= 1 + 0.05*randn, torch.Generator)")
    path = os.path.join(root, "deltas.safetensors")
    save_file(deltas, path, metadata=metadata)
    files = {}
    for directory, _, names in os.walk(root):
        for file in names:
            full = os.path.join(directory, file)
            files[os.path.relpath(full, OUT)] = os.path.getsize(full)
    return files


def safetensors_header(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(length))  # dicts keep the header's order


def smollm2_manifest():
    config = LlamaConfig(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True, rms_norm_eps=1e-5,
                         rope_theta=100000, max_position_embeddings=8192)
    # What from_pretrained("HuggingFaceTB/SmolLM2-135M-Instruct") would set; PEFT copies it into the
    # adapter config's base_model_name_or_path.
    config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
    torch.manual_seed(5)
    model = LlamaForCausalLM(config).to(torch.float32).eval()
    lora_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, target_modules=list(PROJECTIONS),
                                                  lora_dropout=0.0))
    with tempfile.TemporaryDirectory() as directory:
        lora_model.save_pretrained(directory)
        with open(os.path.join(directory, "adapter_config.json")) as f:
            adapter_config = json.load(f)
        header = safetensors_header(os.path.join(directory, "adapter_model.safetensors"))
        written = {name: os.path.getsize(os.path.join(directory, name)) for name in sorted(os.listdir(directory))}
    assert adapter_config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    manifest = {
        "provenance": dict(versions(), what="PEFT save_pretrained of LoraConfig(r=16, lora_alpha=16, target_modules="
                                            "all 7 projections, lora_dropout=0.0) on a randomly initialized float32 "
                                            "LlamaForCausalLM with SmolLM2-135M's configuration; weights not kept",
                           llama_config={k: getattr(config, k) for k in (
                               "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                               "num_key_value_heads", "vocab_size", "tie_word_embeddings", "rms_norm_eps",
                               "max_position_embeddings", "rope_parameters")},
                           files_written=written),
        "adapter_config": adapter_config,
        "tensors": [{"key": key, "dtype": entry["dtype"], "shape": entry["shape"]}
                    for key, entry in header.items() if key != "__metadata__"],
        "metadata": header.get("__metadata__"),
    }
    path = os.path.join(OUT, "smollm2-manifest.json")
    with open(path, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    return {"file": path, "bytes": os.path.getsize(path), "tensors": len(manifest["tensors"])}


def main():
    torch._dynamo.config.disable = True
    torch.set_num_threads(1)  # one summation/LAPACK order (SVD, matmuls)
    os.makedirs(OUT, exist_ok=True)
    report = {"loftq": loftq_fixture(), "tiny-llama": tiny_llama_fixtures(), "smollm2": smollm2_manifest()}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    sys.exit(main())
