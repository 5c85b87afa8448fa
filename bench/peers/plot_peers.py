#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Bar chart and Markdown table of W8 against the peers (sequences/s, ratio to the best fp32 peer).

Usage:
    /usr/bin/python3 bench/peers/plot_peers.py PEERS.json [XFMR.json] [-o bench/peers/w8.png]

PEERS.json: written by run_peers.py (bench/peers/results/<date>-<cpu>.json). Its "xfmr" records
(run_peers.py --xfmr-bench) are plotted too. XFMR.json, optional: either Google Benchmark JSON
from `xfmr_bench --benchmark_filter=BM_model_encoder/hidden:384/ --benchmark_format=json
--benchmark_repetitions=5` (MiniLM shape; mix:0 is the 32 × 128 batch, mix:1 the sentence
mix), or a JSON in the peers' shape: {"results": [{"engine": "xfmr", "mode": "fp32",
"threads": 1, "batch": "full" | "mix", "seq_per_s_median": ...}, ...]}.

Bars: each engine's fp32 (solid) and its best low-precision mode that kept cosine >= 0.999 to
fp32 (hatched; absent when no mode did), per batch (panels) and thread count (groups); labels
give sequences/s (median) and the ratio to the best fp32 peer of that batch and thread count.
Prints the Markdown table on stdout. Needs matplotlib (Debian: apt-get install
python3-matplotlib).
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_peers import parse_xfmr  # noqa: E402  (standard library only at import time)

ENGINES = ["xfmr", "torch", "ort", "ct2"]
NAMES = {"xfmr": "xfmr", "torch": "torch", "ort": "onnxruntime", "ct2": "CTranslate2"}
COLOURS = {"xfmr": "tab:red", "torch": "tab:orange", "ort": "tab:blue", "ct2": "tab:green"}
BATCH_TITLES = {"full": "32 × 128 tokens", "mix": "32 real sentences (padded to the longest)"}


def load_records(paths):
    doc, records = None, []
    for i, path in enumerate(paths):
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if "benchmarks" in data:  # Google Benchmark output of xfmr_bench
            records += parse_xfmr(data)
            continue
        if i == 0:
            doc = data
        records += [r for r in data.get("results", []) if "seq_per_s_median" in r]
    return doc, records


def bars(records):
    """{(batch, threads): [(engine, mode, seq/s, low precision?)]}: fp32 and best low precision."""
    out = {}
    for r in records:
        lowp = r["mode"] != "fp32"
        if lowp and not r.get("best_low_precision"):
            continue
        out.setdefault((r["batch"], r["threads"]), []).append(
            (r["engine"], r["mode"], r["seq_per_s_median"], lowp))
    for v in out.values():
        v.sort(key=lambda x: (ENGINES.index(x[0]) if x[0] in ENGINES else 9, x[3]))
    return out


def best_fp32_peer(entries):
    vals = [s for e, _, s, lowp in entries if e != "xfmr" and not lowp]
    return max(vals) if vals else float("nan")


def table(groups):
    cols = sorted(groups, key=lambda k: (k[0] != "full", k[1]))
    rows = []
    for (batch, threads) in cols:
        for e, m, _, _ in groups[(batch, threads)]:
            if (e, m) not in rows:
                rows.append((e, m))
    rows.sort(key=lambda em: (ENGINES.index(em[0]) if em[0] in ENGINES else 9, em[1] != "fp32"))
    head = "| engine | mode | " + " | ".join(f"{b} {t} thr" for b, t in cols) + " |"
    lines = [head, "|" + "---|" * (2 + len(cols))]
    for e, m in rows:
        cells = []
        for k in cols:
            hit = [s for ee, mm, s, _ in groups[k] if (ee, mm) == (e, m)]
            ref = best_fp32_peer(groups[k])
            cells.append(f"{hit[0]:.1f} ({hit[0] / ref:.2f}×)" if hit else "–")
        lines.append(f"| {NAMES.get(e, e)} | {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("peers")
    ap.add_argument("xfmr", nargs="?")
    ap.add_argument("-o", "--out", default=str(Path(__file__).resolve().parent / "w8.png"))
    args = ap.parse_args()
    doc, records = load_records([args.peers] + ([args.xfmr] if args.xfmr else []))
    groups = bars(records)
    if not groups:
        sys.exit(f"plot_peers: no measurements in {args.peers}")
    print(table(groups))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    batches = [b for b in ("full", "mix") if any(k[0] == b for k in groups)]
    fig, axes = plt.subplots(1, len(batches), figsize=(6.5 * len(batches), 4.8), squeeze=False)
    for ax, batch in zip(axes[0], batches):
        keys = sorted(k for k in groups if k[0] == batch)
        x0 = 0.0
        ticks, labels = [], []
        for k in keys:
            entries = groups[k]
            ref = best_fp32_peer(entries)
            for i, (e, m, s, lowp) in enumerate(entries):
                x = x0 + i
                ax.bar(x, s, color=COLOURS.get(e, "grey"), hatch="//" if lowp else None,
                       edgecolor="black", linewidth=0.5, alpha=0.6 if lowp else 1.0)
                ax.text(x, s, f"{s:.0f}\n{s / ref:.2f}×", ha="center", va="bottom", fontsize=7)
                ax.text(x, 0, m, ha="center", va="bottom", fontsize=6, rotation=90, color="white")
            ticks.append(x0 + (len(entries) - 1) / 2)
            labels.append(f"{k[1]} thread{'s' if k[1] > 1 else ''}")
            x0 += len(entries) + 1
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels)
        ax.set_ylabel("sequences / s (median)")
        ax.set_title(BATCH_TITLES.get(batch, batch), fontsize=10)
        ax.margins(y=0.18)
    present = [e for e in ENGINES if any(r["engine"] == e for r in records)]
    handles = [Patch(color=COLOURS[e], label=NAMES[e]) for e in present]
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="//",
                         label="best low precision (cos ≥ 0.999)"))
    fig.legend(handles=handles, fontsize=8, loc="lower center", ncol=len(handles))
    peer_tokens = {r["batch"]: r.get("valid_tokens") for r in records if r["engine"] != "xfmr"}
    odd = sorted({(r["batch"], r["valid_tokens"]) for r in records if r["engine"] == "xfmr"
                  and r.get("valid_tokens") not in (None, peer_tokens.get(r["batch"]))})
    if odd:
        fig.text(0.5, 0.055, "; ".join(
            f"xfmr's {b} batch: {t:.0f} valid tokens, the peers' {peer_tokens.get(b)}"
            for b, t in odd), ha="center", fontsize=7, color="tab:red")
    title = "W8: all-MiniLM-L6-v2 encoder forward (last hidden state), ratio to the best fp32 peer"
    if doc:
        title += f"\n{doc['cpu']['model']}, {doc['started_utc']}"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(args.out, dpi=110)
    print(f"\nplot_peers: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
