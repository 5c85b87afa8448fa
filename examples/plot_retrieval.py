#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Plot examples/semantic_search's results: retrieval quality and search time against k.

Usage: build/examples/semantic_search > search.txt
       /usr/bin/python3 examples/plot_retrieval.py search.txt examples/retrieval.png
Reads the "RESULT kind k recall1 recall10 mrr cos_mean cos_std ms_per_query" lines between
BEGIN RESULTS and END RESULTS; needs Debian's python3-matplotlib.
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows = {}
    for line in open(sys.argv[1], encoding="utf-8"):
        f = line.split()
        if len(f) == 9 and f[0] == "RESULT":
            rows.setdefault(f[1], []).append((int(f[2]), *map(float, f[3:])))
    if "raw" not in rows or "whitened" not in rows:
        sys.exit("no RESULT lines for raw and whitened in " + sys.argv[1])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    raw = rows["raw"][0]
    styles = {"whitened": ("tab:orange", "o-", "whitened (fit on the documents)"),
              "raw-cut": ("tab:gray", "s--", "raw, first k dimensions")}
    for kind, (color, style, label) in styles.items():
        pts = sorted(rows.get(kind, []) + ([raw] if kind == "raw-cut" else []))
        if not pts:
            continue
        ks = [p[0] for p in pts]
        a1.plot(ks, [p[1] for p in pts], style, color=color, label=label + " R@1")
        a1.plot(ks, [p[3] for p in pts], style, color=color, alpha=0.45, label=label + " MRR")
        a2.plot(ks, [p[6] for p in pts], style, color=color, label=label)
    for ax, y, name in ((a1, raw[1], "raw R@1"), (a1, raw[3], "raw MRR")):
        ax.axhline(y, color="tab:blue", lw=1, ls=":", label=name)
    a2.axhline(raw[6], color="tab:blue", lw=1, ls=":", label="raw (k = 384)")
    a1.set(xlabel="k (dimensions kept)", ylabel="recall@1 / MRR",
           title="Fortune halves: find the continuation")
    a2.set(xlabel="k (dimensions kept)", ylabel="ms per query (top 10, 1 thread)",
           title="Search time (2,000 documents)")
    for ax in (a1, a2):
        ax.set_xticks([64, 128, 256, 384])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("all-MiniLM-L6-v2 in xfmr: raw vs BERT-whitened", fontsize=11)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
