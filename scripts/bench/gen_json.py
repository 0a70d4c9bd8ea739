#!/usr/bin/env python3
"""Writes a deterministic ~10 MiB JSON document for the parse benchmark.

Usage: python3 scripts/bench/gen_json.py OUT.json [--mebibytes 10] [--seed 1]

A top-level array of records that look like an API's rows: integers, floats with full
precision, short and long strings (some with escapes and non-ASCII), booleans, nulls, a nested
object and a small array per record. Every object's keys are distinct (our parser rejects
duplicates). Prints one JSON line with the byte count and the number of records.
"""
import argparse
import json
import random

WORDS = ("loquat quantize adapter merge layer tensor rank alpha gram matrix kernel block scale "
         "zero point outlier rotation hadamard calibration perplexity token embedding head").split()
NON_ASCII = ("naïve", "über", "日本語", "Ελληνικά", "emoji 🙂", "façade", "Zürich")


def record(rng, index):
    words = [rng.choice(WORDS) for _ in range(rng.randint(3, 12))]
    if rng.random() < 0.2:
        words.append(rng.choice(NON_ASCII))
    note = " ".join(words)
    if rng.random() < 0.1:
        note += ' with "quotes", a tab\tand a\nnewline \\ backslash'
    return {
        "id": index,
        "uuid": "%08x-%04x-%04x-%04x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16),
                                               rng.getrandbits(16), rng.getrandbits(48)),
        "name": f"{rng.choice(WORDS)}_{rng.choice(WORDS)}_{index}",
        "active": rng.random() < 0.5,
        "score": rng.gauss(0, 1),
        "count": rng.randint(-10**9, 10**9),
        "ratio": round(rng.random(), 4),
        "parent": None if rng.random() < 0.3 else rng.randint(0, index + 1),
        "tags": [rng.choice(WORDS) for _ in range(rng.randint(0, 5))],
        "shape": [rng.choice((64, 128, 576, 1536, 49152)) for _ in range(2)],
        "location": {"lat": rng.uniform(-90, 90), "lon": rng.uniform(-180, 180), "alt": None},
        "note": note,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--mebibytes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    target = int(args.mebibytes * (1 << 20))
    pieces, size, index = [], 2, 0
    while size < target:
        text = json.dumps(record(rng, index), ensure_ascii=False, separators=(",", ":"))
        pieces.append(text)
        size += len(text.encode("utf-8")) + 1
        index += 1
    data = ("[" + ",\n".join(pieces) + "]\n").encode("utf-8")
    with open(args.out, "wb") as out:
        out.write(data)
    print(json.dumps({"path": args.out, "byteCount": len(data), "records": index}))


if __name__ == "__main__":
    main()
