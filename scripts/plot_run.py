#!/usr/bin/env python3
"""Plots of a specula run directory. `specula run` calls it at the end; rerun it by hand at any time:

    python3 scripts/plot_run.py RUN_DIR

Reads RUN_DIR/metrics.json and writes RUN_DIR/plots/NAME.png and NAME.svg:

  speedup_tau              speedup vs the baseline and tau per cell (mean over prompts, 95% CI error bars)
  acceptance_by_position   acceptance rate at each draft depth, per cell (Wilson 95% intervals)
  speedup_vs_<axis>        speedup and tau against every numeric grid/zip axis (draft.k, a sparsity level, ...),
                           one line per combination of the other axes
  speedup_vs_<metric>      speedup against a sparsity figure a strategy reported (achieved sparsity)
  layers_<metric>          per-layer figures reported by strategies (target or self-draft), one line per cell

Lossy cells (typical acceptance, target strategies that are not exact) are hatched and marked LOSSY.
Exit status: 0 plots written; 3 matplotlib is not installed; 1 anything else (message on stderr).
"""
import json
import math
import os
import re
import sys


def slug(s):
    return re.sub(r"[^a-z0-9._]+", "-", s.lower()).strip("-")[:60] or "x"


def finite(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def label_of(c):
    return c["label"] + (" (LOSSY)" if c.get("lossy") else "")


def err(summary):
    """Asymmetric error bars from a summary {mean, ci95: [lo, hi]}."""
    m = summary.get("mean") if summary else None
    ci = summary.get("ci95") if summary else None
    if not finite(m):
        return None, (0, 0)
    if not ci or not finite(ci[0]) or not finite(ci[1]):
        return m, (0, 0)
    return m, (m - ci[0], ci[1] - m)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 1
    run_dir = sys.argv[1]
    out = os.path.join(run_dir, "plots")
    if os.path.isdir(out):  # figures of an earlier invocation must not pass for this one's
        for old in os.listdir(out):
            if old.endswith((".png", ".svg")):
                os.remove(os.path.join(out, old))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"matplotlib is not available ({e}); install python3-matplotlib", file=sys.stderr)
        return 3
    with open(os.path.join(run_dir, "metrics.json")) as f:
        m = json.load(f)
    os.makedirs(out, exist_ok=True)
    cells = m.get("cells", [])
    rows = m.get("baselines", []) + cells
    title = m["run"]["name"]
    written = []

    def save(fig, name):
        fig.tight_layout()
        for ext in ("png", "svg"):
            fig.savefig(os.path.join(out, f"{name}.{ext}"), dpi=130)
        plt.close(fig)
        written.append(name)

    # 1. Speedup and tau per cell.
    if cells:
        n = len(cells)
        fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.1 * n + 4), 4.8))
        for ax, key, ylabel, ref in (
            (axes[0], "speedup", "speedup vs baseline (x)", 1.0),
            (axes[1], "tau", "tau (tokens per verification pass)", 1.0),
        ):
            xs, ys, lo, hi, hatch = [], [], [], [], []
            for i, c in enumerate(cells):
                y, (el, eh) = err(c.get(key))
                if y is None:
                    continue
                xs.append(i)
                ys.append(y)
                lo.append(el)
                hi.append(eh)
                hatch.append("//" if c.get("lossy") else "")
            bars = ax.bar(xs, ys, yerr=[lo, hi], capsize=4, color="#4C72B0", edgecolor="black", linewidth=0.6)
            for b, h in zip(bars, hatch):
                b.set_hatch(h)
            ax.axhline(ref, color="gray", linestyle="--", linewidth=1,
                       label="baseline (autoregressive)" if key == "speedup" else "plain decoding")
            ax.set_xticks(range(n))
            ax.set_xticklabels([label_of(c) for c in cells], rotation=30, ha="right", fontsize=8)
            ax.set_ylabel(ylabel)
            ax.legend(fontsize=8, loc="best")
            ax.grid(axis="y", alpha=0.3)
        axes[0].set_title("speedup (mean over prompts, 95% CI)")
        axes[1].set_title("tau (mean over prompts, 95% CI)")
        fig.suptitle(title)
        save(fig, "speedup_tau")

    # 2. Acceptance by draft position.
    acc = [c for c in cells if c.get("acceptance_by_position")]
    if acc:
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        for j, c in enumerate(acc):
            a = c["acceptance_by_position"]
            x = [p["position"] + (j - (len(acc) - 1) / 2) * 0.03 for p in a]
            y = [p["rate"] for p in a]
            e = [[p["rate"] - p["ci95"][0] for p in a], [p["ci95"][1] - p["rate"] for p in a]]
            ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=label_of(c),
                        linestyle="--" if c.get("lossy") else "-")
        kmax = max(len(c["acceptance_by_position"]) for c in acc)
        ax.set_xticks(range(1, kmax + 1))
        ax.set_xlabel("draft position (depth)")
        ax.set_ylabel("acceptance rate")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{title}: acceptance by draft position (pooled, Wilson 95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        save(fig, "acceptance_by_position")

    # 3. Speedup (and tau) against each numeric axis.
    for axis in m.get("axes", []):
        groups = {}
        for c in cells:
            ov = c.get("overrides", {})
            v = ov.get(axis)
            if not finite(v):
                continue
            rest = tuple(sorted((k, json.dumps(x)) for k, x in ov.items() if k != axis))
            groups.setdefault(rest, []).append((v, c))
        groups = {k: sorted(v, key=lambda t: t[0]) for k, v in groups.items() if len({t[0] for t in v}) >= 2}
        if not groups:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
        xs_all = sorted({v for pts in groups.values() for v, _ in pts})
        for rest, pts in groups.items():
            name = ", ".join(f"{k.split('.')[-1]}={json.loads(v)}" for k, v in rest) or "all"
            for ax, key in ((axes[0], "speedup"), (axes[1], "tau")):
                xs, ys, lo, hi = [], [], [], []
                for v, c in pts:
                    y, (el, eh) = err(c.get(key))
                    if y is None:
                        continue
                    xs.append(v)
                    ys.append(y)
                    lo.append(el)
                    hi.append(eh)
                if xs:
                    ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=name)
        axes[0].axhline(1.0, color="gray", linestyle="--", linewidth=1)
        axes[0].set_ylabel("speedup vs baseline (x)")
        axes[1].set_ylabel("tau")
        for ax in axes:
            ax.set_xlabel(axis)
            if all(float(v).is_integer() for v in xs_all):
                ax.set_xticks(xs_all)
            ax.grid(alpha=0.3)
            if len(groups) > 1:
                ax.legend(fontsize=7, loc="best")
        fig.suptitle(f"{title}: speedup and tau vs {axis} (mean, 95% CI)")
        save(fig, f"speedup_vs_{slug(axis)}")

    # 4. Speedup against achieved sparsity reported by strategies.
    names = set()
    for c in cells:
        for src in ("strategy_metrics", "draft_strategy_metrics"):
            names.update(k for k in c.get(src, {}) if "sparsity" in k)
    for name in sorted(names):
        fig, ax = plt.subplots(figsize=(6.5, 4.6))
        for src, marker, where in (("strategy_metrics", "o", "target"), ("draft_strategy_metrics", "s", "self-draft")):
            pts = [(c[src][name], c) for c in cells if finite(c.get(src, {}).get(name))]
            for v, c in pts:
                y, (el, eh) = err(c.get("speedup"))
                if y is not None:
                    ax.errorbar([v], [y], yerr=[[el], [eh]], marker=marker, capsize=3, label=f"{label_of(c)} ({where})")
        ax.axhline(1.0, color="gray", linestyle="--", linewidth=1)
        ax.set_xlabel(f"{name} (reported by the strategy)")
        ax.set_ylabel("speedup vs baseline (x)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        ax.set_title(f"{title}: speedup vs {name}")
        save(fig, f"speedup_vs_{slug(name)}")

    # 5. Per-layer figures from strategies.
    per = {}
    for c in rows:
        for src, where in (("layer_metrics", "target"), ("draft_layer_metrics", "self-draft")):
            for k, v in c.get(src, {}).items():
                if isinstance(v, list) and v:
                    per.setdefault(k, []).append((f"{label_of(c)} ({where})", v))
    for k, series in sorted(per.items()):
        fig, ax = plt.subplots(figsize=(8, 4.6))
        binary = all(x in (0, 1) for _, v in series for x in v)
        for lab, v in series:
            ax.plot(range(len(v)), v, marker=".", label=lab, drawstyle="steps-mid" if binary else "default")
        ax.set_xlabel("layer")
        ax.set_ylabel(k)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        ax.set_title(f"{title}: {k} per layer")
        save(fig, f"layers_{slug(k)}")

    print(f"plots: {len(written)} figures in {out} ({', '.join(written) or 'none'})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # report, do not hide: the run's report.md shows this message
        print(f"plot_run.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
