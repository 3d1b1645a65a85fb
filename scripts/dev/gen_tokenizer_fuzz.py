#!/usr/bin/python3
"""gen_tokenizer_fuzz.py: writes tests/data/tokenizer/fuzz.json, CLIP tokenizer ids for
random strings built to hit the corners of the clean-up and the pre-tokenizer: HTML
entities (named with and without ';', numeric, invalid), whitespace outside ASCII (U+0085,
U+00A0, U+180E, U+001C, U+2028 ...), capital sigma in every context, letters and digits
of many scripts, combining marks, emoji sequences, contractions, the special markers in
odd casings. The reference steps of tests/data/tokenizer/README.md are evaluated with
Python's own html.unescape and str.lower and the `regex` module (ftfy.fix_text is not
applied, as for the goldens), so test_tokenizer checks the C code against the real
libraries, not against a re-reading of them.

Needs Debian's python3-regex (developer tool, not part of the build):

    /usr/bin/python3 scripts/dev/gen_tokenizer_fuzz.py scripts/data/bpe_simple_vocab_16e6.txt.gz \\
        tests/data/tokenizer/fuzz.json
"""
import gzip
import html
import json
import random
import sys
import unicodedata

import regex


def byte_chars():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


class Reference:
    """The README's algorithm, step by step."""

    def __init__(self, vocab_gz):
        merges = gzip.open(vocab_gz).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in merges]
        self.bytes = byte_chars()
        vocab = list(self.bytes.values())
        vocab += [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
        vocab += ["<start_of_text>", "<end_of_text>"]
        self.ids = {v: i for i, v in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.pat = regex.compile(r"<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|"
                                 r"[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+", regex.IGNORECASE)

    def bpe(self, piece):
        word = list(piece[:-1]) + [piece[-1] + "</w>"]
        while len(word) > 1:
            pairs = [(word[i], word[i + 1]) for i in range(len(word) - 1)]
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        return word

    def encode(self, text):
        text = html.unescape(html.unescape(text)).strip()
        text = regex.sub(r"\s+", " ", text).strip().lower()
        ids = [self.ids["<start_of_text>"]]
        for piece in self.pat.findall(text):
            if piece in ("<start_of_text>", "<end_of_text>"):
                ids.append(self.ids[piece])
            else:
                enc = "".join(self.bytes[b] for b in piece.encode("utf-8"))
                ids += [self.ids[s] for s in self.bpe(enc)]
        return ids + [self.ids["<end_of_text>"]]


ENTITIES = ["&amp;", "&amp", "&lt", "&gt;", "&copy", "&eacute;", "&Eacute", "&notin;", "&notit;",
            "&nbsp;", "&#39;", "&#x27;", "&#X41;", "&#128;", "&#x9f;", "&#0;", "&#xD800;",
            "&#1114112;", "&#9;", "&#13;", "&#xFDD0;", "&#65", "&#x;", "&;", "&amp;amp;",
            "&amp;lt;", "&Sigma;", "&sigma", "&nGt;", "&zwj;", "&hellip;", "&#8203;"]
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x85", "\xa0", "\u1680", "\u2002",
          "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\u180e", "\x1c", "\x1f",
          "\u200b"]
WORDS = ["photo", "Photo", "CAT", "dog's", "it'S", "we'LL", "they'Re", "I'M", "you'd", "o'clock",
         "ΟΔΥΣΣΕΥΣ", "ΣΑΣ", "Σ", "ΑΣ", "Σ.", "ΑΣ'", "ʰΣ", "İstanbul", "ẞ", "ǅungla", "Ωmega",
         "<start_of_text>", "<END_of_TEXT>", "<ſtart_of_text>", "<end_of_text>", "ﬁne", "Kelvin",
         "naïve", "café", "e\u0301", "Ünïcödé", "東京", "カタカナ", "한국어", "مرحبا", "עברית",
         "नमस्ते", "ไทย", "Привет", "123", "٣٤٥", "½", "x²", "Ⅻ", "10,000", "3.14", "😀",
         "👍🏽", "🇯🇵", "👨‍👩‍👧", "❤️", "...", "?!", "--", "©®™", "#tag", "@user", "a_b",
         "supercalifragilisticexpialidocious", "'", "''", "'s", "’s", "\u0345", "ſ"]


def random_char(rng):
    while True:
        c = chr(rng.randrange(0x20, 0x30000))
        if unicodedata.category(c) not in ("Cn", "Cs", "Co"):
            return c


def random_string(rng):
    parts = []
    for _ in range(rng.randrange(1, 12)):
        r = rng.random()
        if r < 0.25:
            parts.append(rng.choice(ENTITIES))
        elif r < 0.45:
            parts.append(rng.choice(SPACES))
        elif r < 0.85:
            parts.append(rng.choice(WORDS))
        else:
            parts.append("".join(random_char(rng) for _ in range(rng.randrange(1, 4))))
    return "".join(parts)


def main():
    ref = Reference(sys.argv[1])
    rng = random.Random(1234)
    rows = [{"text": s, "ids": ref.encode(s)} for s in (random_string(rng) for _ in range(400))]
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump({"regex": regex.__version__, "unicodedata": unicodedata.unidata_version,
                   "rows": rows}, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
