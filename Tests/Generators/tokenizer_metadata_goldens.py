#!/usr/bin/env python3
"""Fixtures for TokenizerMetadataTests (Tests/CheckpointsTests/Fixtures/tokenizer/).

Two jobs, see README-tokenizer-metadata.md:

1. (always) tiny tokenizer.json files of each byte-level family, serialized by the PyPI
   `tokenizers` package, plus one WordPiece file, so the Swift pre-tokenizer recognition is tested
   on what the library really writes:  tiny-gpt2, tiny-smollm, tiny-llama3, tiny-qwen2,
   tiny-wordpiece.

2. (with --hf-dir, --gguf, --llama-tokenize) the golden ids of mixed-text.txt for SmolLM2:
   - --hf-dir holds the tokenizer files Loquat generated from the SmolLM2 GGUF
     (LOQUAT_TOKENIZER_DUMP_DIR=<dir> swift test --filter TokenizerMetadataTests/testSmolLM2HuggingFaceFilesStructure);
   - `tokenizers.Tokenizer.from_file` must load that tokenizer.json and round-trip
     decode(encode(text)) == text;
   - its ids must equal llama.cpp's (`llama-tokenize --ids` on the GGUF);
   - with `transformers` importable, AutoTokenizer must load the directory and give the same ids;
   - the ids are written to smollm2-mixed-text.ids.json.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys

import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers import AddedToken

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "CheckpointsTests", "Fixtures", "tokenizer"))

LLAMA3_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def byte_level_bpe(first_id, ignore_merges=False):
    """256 byte-level chars (sorted) from first_id on, then a few merged tokens."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {char: first_id + index for index, char in enumerate(alphabet)}
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a"), ("Ġa", "n"), ("Ġan", "d"), ("1", "2")]
    for left, right in merges:
        vocab.setdefault(left + right, first_id + len(vocab))
    return models.BPE(vocab=vocab, merges=merges, ignore_merges=ignore_merges)


def byte_level(add_prefix_space=False, trim_offsets=True, use_regex=True):
    return pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space, trim_offsets=trim_offsets, use_regex=use_regex)


def save(tokenizer, name, config=None):
    directory = os.path.join(FIXTURES, name)
    os.makedirs(directory, exist_ok=True)
    tokenizer.save(os.path.join(directory, "tokenizer.json"))
    if config is not None:
        with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=2, sort_keys=True, ensure_ascii=False)
            handle.write("\n")


def tiny_fixtures():
    # GPT-2: ByteLevel with its own regex; <|endoftext|> after the vocabulary.
    gpt2 = Tokenizer(byte_level_bpe(0))
    gpt2.pre_tokenizer = byte_level()
    gpt2.post_processor = processors.ByteLevel(trim_offsets=False)
    gpt2.decoder = decoders.ByteLevel()
    gpt2.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    save(gpt2, "tiny-gpt2", {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"})

    # SmolLM/SmolLM2: special tokens first, Digits(individual) then ByteLevel.
    smollm = Tokenizer(byte_level_bpe(3))
    smollm.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")])
    smollm.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level()])
    smollm.post_processor = processors.ByteLevel(trim_offsets=False)
    smollm.decoder = decoders.ByteLevel()
    save(smollm, "tiny-smollm", {"add_prefix_space": False, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
                                 "unk_token": "<|endoftext|>", "pad_token": "<|im_end|>",
                                 "chat_template": "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"})

    # Llama 3: Split(regex) then ByteLevel without regex, ignore_merges, BOS by TemplateProcessing.
    llama3 = Tokenizer(byte_level_bpe(0, ignore_merges=True))
    llama3.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        byte_level(use_regex=False)])
    llama3.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<|begin_of_text|>", "<|end_of_text|>")])
    bos_id = llama3.token_to_id("<|begin_of_text|>")
    llama3.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos_id)])])
    llama3.decoder = decoders.ByteLevel()
    save(llama3, "tiny-llama3", {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
                                 "tokenizer_class": "PreTrainedTokenizerFast"})

    # Qwen2: NFC, Split(regex with single digits) then ByteLevel without regex.
    qwen2 = Tokenizer(byte_level_bpe(0))
    qwen2.normalizer = normalizers.NFC()
    qwen2.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
        byte_level(trim_offsets=False, use_regex=False)])
    qwen2.post_processor = processors.ByteLevel(trim_offsets=False)
    qwen2.decoder = decoders.ByteLevel()
    qwen2.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")])
    save(qwen2, "tiny-qwen2", {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})

    # WordPiece (BERT): must be refused by the GGUF export.
    vocab = {token: index for index, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "##s", "cat"])}
    wordpiece = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wordpiece.decoder = decoders.WordPiece()
    save(wordpiece, "tiny-wordpiece")
    print(f"wrote tiny-* fixtures to {FIXTURES}")


def llama_cpp_ids(binary, gguf, text_path):
    output = subprocess.run([binary, "-m", gguf, "-f", text_path, "--ids", "--no-escape", "--log-disable"],
                            check=True, capture_output=True, text=True).stdout
    line = [line for line in output.splitlines() if line.startswith("[")][-1]
    return json.loads(line)


def golden(hf_dir, gguf, llama_tokenize):
    text_path = os.path.join(FIXTURES, "mixed-text.txt")
    with open(text_path, "rb") as handle:
        raw = handle.read()
    text = raw.decode("utf-8")

    tokenizer = Tokenizer.from_file(os.path.join(hf_dir, "tokenizer.json"))
    encoding = tokenizer.encode(text)
    ids = encoding.ids
    decoded = tokenizer.decode(ids, skip_special_tokens=False)
    if decoded != text:
        sys.exit("tokenizers: decode(encode(text)) != text")
    print(f"tokenizers {tokenizers.__version__}: {len(ids)} ids, decode(encode(text)) == text")

    reference = llama_cpp_ids(llama_tokenize, gguf, text_path)
    if reference != ids:
        first = next((i for i, (a, b) in enumerate(zip(ids, reference)) if a != b), min(len(ids), len(reference)))
        sys.exit(f"ids differ from llama.cpp at {first}: ours {ids[first:first + 8]} "
                 f"({encoding.tokens[first:first + 8]}), llama.cpp {reference[first:first + 8]}")
    print(f"llama.cpp: the same {len(reference)} ids")

    try:
        import transformers
        transformers.AutoTokenizer  # resolves the lazy module; imports torch, which may fail
    except Exception as error:  # not installed, or torch cannot load (see README-tokenizer-metadata.md)
        print(f"transformers unavailable ({type(error).__name__}): AutoTokenizer check skipped")
    else:
        auto = transformers.AutoTokenizer.from_pretrained(hf_dir)
        auto_ids = auto(text)["input_ids"]
        if auto_ids != ids:
            sys.exit("transformers AutoTokenizer gives other ids")
        if auto.decode(auto_ids) != text:
            sys.exit("transformers AutoTokenizer: decode(encode(text)) != text")
        print(f"transformers {transformers.__version__}: AutoTokenizer ({type(auto).__name__}) gives the same ids; "
              f"bos={auto.bos_token!r} eos={auto.eos_token!r} pad={auto.pad_token!r} max_len={auto.model_max_length}")

    record = {
        "text": "mixed-text.txt",
        "text_sha256": hashlib.sha256(raw).hexdigest(),
        "token_count": len(ids),
        "ids": ids,
    }
    with open(os.path.join(FIXTURES, "smollm2-mixed-text.ids.json"), "w", encoding="utf-8") as handle:
        handle.write(json.dumps(record, separators=(",", ":")) + "\n")
    print("wrote smollm2-mixed-text.ids.json")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hf-dir", help="tokenizer files Loquat made from the SmolLM2 GGUF")
    parser.add_argument("--gguf", help="SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--llama-tokenize", help="llama.cpp's llama-tokenize binary")
    arguments = parser.parse_args()
    tiny_fixtures()
    if arguments.hf_dir:
        if not (arguments.gguf and arguments.llama_tokenize):
            parser.error("--hf-dir needs --gguf and --llama-tokenize")
        golden(arguments.hf_dir, arguments.gguf, arguments.llama_tokenize)


if __name__ == "__main__":
    main()
