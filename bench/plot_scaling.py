#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Time against sequence length for softmax, linear and Performer attention (log-log).

Reads Google Benchmark JSON from the BM_scaling_* benchmarks of xfmr_bench:

    build/bench/xfmr_bench --benchmark_filter=BM_scaling_ \\
        --benchmark_format=json --benchmark_out=scaling.json
    /usr/bin/python3 bench/plot_scaling.py scaling.json [bench/scaling.png]

Series: BM_scaling_softmax, BM_scaling_linear, BM_scaling_performer (one head, d = 64,
non-causal, float, single thread; Performer m = 256). Any series may be missing; the plot shows
what is there. Marks the measured crossover where linear attention overtakes softmax (log-log
interpolation between the two neighbouring lengths) and the FLOP-count predictions of SPEC §12:
softmax 4·n²·d vs linear 4·n·d² (equal at n = d), Su's quality-matched key size 4d (n = 16d),
and Performer 8·n·m·d (equal at n = 2m). Prints the crossover summary on stdout.
Needs matplotlib (Debian: apt-get install python3-matplotlib).
"""

import json
import math
import re
import sys

D = 64  # head size of the BM_scaling_* runs
M = 256  # Performer features

SERIES = [
    ("BM_scaling_softmax", "softmax (tiled, exact)", "tab:red", "o"),
    ("BM_scaling_linear", "linear (elu+1)", "tab:blue", "s"),
    ("BM_scaling_performer", "Performer FAVOR+ (m=256)", "tab:green", "^"),
]

_UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def load(path):
    """{series name: {n: seconds}} from a Google Benchmark JSON file (iterations, not aggregates;
    the median is kept when a length was repeated)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    raw = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration" or "error_occurred" in b:
            continue
        name = b.get("run_name", b.get("name", ""))
        parts = name.split("/")
        m = re.search(r"(\d+)$", parts[1]) if len(parts) > 1 else None
        if m is None:
            continue
        t = float(b["real_time"]) * _UNIT.get(b.get("time_unit", "ns"), 1e-9)
        raw.setdefault(parts[0], {}).setdefault(int(m.group(1)), []).append(t)
    return {s: {n: sorted(ts)[len(ts) // 2] for n, ts in pts.items()} for s, pts in raw.items()}


def crossover(fast_later, slow_later):
    """First n where series `fast_later` becomes faster than `slow_later`, interpolated in log-log.
    Returns (n, text): n None when not reached or already faster at the first common length."""
    common = sorted(set(fast_later) & set(slow_later))
    if not common:
        return None, "no common lengths"
    prev = None
    for n in common:
        r = math.log(fast_later[n] / slow_later[n])  # > 0: still slower
        if r <= 0:
            if prev is None:
                return None, f"already faster at the smallest length n = {n}"
            n0, r0 = prev
            x = math.exp(math.log(n0) + (math.log(n) - math.log(n0)) * r0 / (r0 - r))
            return x, f"crosses at n ~ {x:.0f} (between {n0} and {n})"
        prev = (n, r)
    return None, f"not reached up to n = {common[-1]}"


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 2 if len(argv) < 2 else 0
    out = argv[2] if len(argv) > 2 else "bench/scaling.png"
    try:
        data = load(argv[1])
    except (OSError, ValueError) as e:
        print(f"cannot read {argv[1]}: {e}", file=sys.stderr)
        return 1
    present = [s for s in SERIES if data.get(s[0])]
    missing = [s[0] for s in SERIES if not data.get(s[0])]
    if missing:
        print("missing series (not plotted): " + ", ".join(missing))
    if not present:
        print("no BM_scaling_* results in " + argv[1], file=sys.stderr)
        return 1

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: apt-get install python3-matplotlib, then run with "
              "/usr/bin/python3", file=sys.stderr)
        return 1

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for key, label, color, marker in present:
        pts = sorted(data[key].items())
        ax.plot([n for n, _ in pts], [t * 1e3 for _, t in pts], marker=marker, color=color,
                label=label)

    lines = []
    soft, lin, perf = (data.get(s[0]) for s in SERIES)
    if soft and lin:
        x, text = crossover(lin, soft)
        lines.append("measured: linear vs softmax: " + text)
        if x is not None:
            ax.axvline(x, color="tab:blue", linestyle="-", alpha=0.5)
            ax.annotate(f"measured\nlinear < softmax\nn≈{x:.0f}", (x, 0.60), xycoords=(
                "data", "axes fraction"), va="top", ha="left", fontsize=8, color="tab:blue")
    if soft and perf:
        x, text = crossover(perf, soft)
        lines.append("measured: Performer vs softmax: " + text)
        if x is not None:
            ax.axvline(x, color="tab:green", linestyle="-", alpha=0.5)
            ax.annotate(f"measured\nPerformer < softmax\nn≈{x:.0f}", (x, 0.45), xycoords=(
                "data", "axes fraction"), va="top", ha="left", fontsize=8, color="tab:green")
    predicted = [(D, "FLOPs: linear = softmax\n(n = d)"),
                 (16 * D, "Su: key size 4d\n(n = 16d)"),
                 (2 * M, "FLOPs: Performer =\nsoftmax (n = 2m)")]
    for x, label in predicted:
        ax.axvline(x, color="gray", linestyle="--", alpha=0.6)
        ax.annotate(label, (x, 0.02), xycoords=("data", "axes fraction"), rotation=90,
                    va="bottom", ha="right", fontsize=7, color="gray")
    lines.append(f"SPEC §12 predicted (FLOP counts, d={D}): linear = softmax at n = d = {D}; "
                 f"with Su's 4d key size n = 16d = {16 * D}; Performer (m={M}) = softmax at "
                 f"n = 2m = {2 * M}")

    all_n = [n for key, *_ in present for n in data[key]] + [D]
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlim(min(all_n) / 1.4, max(all_n) * 1.4)
    ticks = [2 ** k for k in range(6, 17) if min(all_n) <= 2 ** k <= max(all_n)]
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks], fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel("sequence length n (one head, d = 64, float, 1 thread)")
    ax.set_ylabel("time per call [ms]")
    ax.set_title("xfmr attention: time against sequence length")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print("wrote " + out)
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
