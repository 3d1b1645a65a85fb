#!/usr/bin/python3
"""gen_tokenizer_long.py: writes tests/data/tokenizer/long.json, CLIP tokenizer ids for
long and repetitive words, where byte-pair merging is hardest to get right: runs of one
letter (overlapping pairs: "a a a" merges the first two only), alternations, and random
words over small alphabets, up to a few hundred letters. The ids come from the reference
steps of tests/data/tokenizer/README.md as gen_tokenizer_fuzz.py evaluates them (the
plain round-by-round merging), so test_tokenizer checks refract's faster merging against
it.

    /usr/bin/python3 scripts/dev/gen_tokenizer_long.py scripts/data/bpe_simple_vocab_16e6.txt.gz \\
        tests/data/tokenizer/long.json
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_tokenizer_fuzz import Reference  # noqa: E402


def strings(rng):
    out = []
    for letter in "aelosxz":
        out += [letter * k for k in list(range(1, 41)) + [63, 64, 65, 100, 127, 128, 129, 300]]
    for unit in ["ab", "lol", "ing", "ss", "abc", "na", "ta", "ee", "ing ", "mississippi"]:
        out += [unit * k for k in range(1, 31)]
    for alphabet, count, longest in [("ab", 40, 300), ("lo", 40, 300), ("aeilnorst", 80, 400),
                                     ("abcdefghijklmnopqrstuvwxyz", 40, 400)]:
        for _ in range(count):
            out.append("".join(rng.choice(alphabet) for _ in range(rng.randrange(2, longest))))
    return out


def main():
    ref = Reference(sys.argv[1])
    rng = random.Random(4321)
    rows = [{"text": s, "ids": ref.encode(s)} for s in strings(rng)]
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump({"rows": rows}, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
