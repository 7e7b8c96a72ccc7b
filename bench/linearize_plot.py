#!/usr/bin/env python3
"""Plots for bench/linearize_study.sh (issue 9), from the files it writes into DIR:

  <model>.linearity.png   per-layer linearity score, residual-free (centered) score, block influence 1 - cos
  ppl_vs_k_<model>.png    perplexity vs number of replaced / skipped layers, one line per selection rule

Usage: python3 bench/linearize_plot.py [DIR]   (default bench/results/linearize; needs matplotlib)
"""
import csv
import glob
import json
import os
import sys


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "bench/results/linearize"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for f in sorted(glob.glob(os.path.join(d, "*.linearity.json"))):
        j = json.load(open(f))
        L = j["layers"]
        x = [r["layer"] for r in L]
        fig, ax = plt.subplots(figsize=(8, 4.6))
        ax.plot(x, [r["linearity"] for r in L], marker="o", label="linearity (Procrustes-normalised)")
        ax.plot(x, [r["linearity_centered"] for r in L], marker="s", label="linearity of Y - X (residual-free)")
        ax.plot(x, [r["influence"] for r in L], marker="^", label="block influence 1 - cos")
        ax.set_xlabel("layer")
        ax.set_ylim(0, 1.02)
        ax.set_xticks(x)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        ax.set_title(f"{j['model_name']}: per-layer linearity ({j['tokens']} tokens)")
        out = f[: -len(".json")] + ".png"
        fig.tight_layout()
        fig.savefig(out, dpi=110)
        plt.close(fig)
        written.append(out)
    for f in sorted(glob.glob(os.path.join(d, "ppl_vs_k_*.csv"))):
        rows = list(csv.DictReader(open(f)))
        if not rows or "rule" not in rows[0] or "dense_ppl" not in rows[0]:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.6))
        rules = []
        for r in rows:
            if r["rule"] not in rules:
                rules.append(r["rule"])
        for i, rule in enumerate(rules):
            rs = [r for r in rows if r["rule"] == rule]
            ks = [int(r["k"]) for r in rs]
            c = f"C{i}"
            ax.plot(ks, [float(r["replace_ppl"]) for r in rs], color=c, marker="o", label=f"{rule}: replace")
            ax.plot(ks, [float(r["skip_ppl"]) for r in rs], color=c, marker="x", linestyle="--", label=f"{rule}: skip")
        ax.axhline(float(rows[0]["dense_ppl"]), color="gray", linewidth=1, label="dense")
        ax.set_yscale("log")
        ax.set_xlabel("layers replaced / skipped (k)")
        ax.set_ylabel("perplexity (log scale)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="best")
        ax.set_title(os.path.basename(f)[: -len(".csv")])
        out = f[: -len(".csv")] + ".png"
        fig.tight_layout()
        fig.savefig(out, dpi=110)
        plt.close(fig)
        written.append(out)
    print("plots: " + (", ".join(written) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
