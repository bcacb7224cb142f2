#!/usr/bin/python3
"""Draws a `vigil-bench faults` JSON as a PNG bar chart: one bar per cell (workload, mode, method,
fault kind), split by outcome as a share of the faults that fired, with each cell's count.

usage: plot_faults.py RESULTS.json CHART.png

Uses Debian's python3-matplotlib (run it with /usr/bin/python3).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")  # no display
import matplotlib.pyplot as plt  # noqa: E402

OUTCOMES = [  # (name in the JSON, colour)
    ("masked", "#c7c7c7"),
    ("corrected", "#2ca02c"),
    ("rolled back", "#1f77b4"),
    ("recovered", "#9467bd"),
    ("failed closed", "#ff7f0e"),
    ("SDC", "#d62728"),
]


def plot(results_path, png_path):
    d = json.load(open(results_path))
    rows = d.get("rows") or []
    if not rows:
        raise SystemExit(f"error: {results_path}: no rows to plot")
    rows = sorted(rows, key=lambda r: (r["workload"], r["mode"], r["method"], r["fault"]))
    labels = [f"{r['workload']} {r['mode']} {r['method']} {r['fault']}" for r in rows]
    fired = [max(1, r["injected"]) for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(rows) + 1.8))
    left = [0.0] * len(rows)
    for name, colour in OUTCOMES:
        share = [r["outcomes"].get(name, 0) / n for r, n in zip(rows, fired)]
        ax.barh(labels, share, left=left, color=colour, label=name, height=0.8)
        left = [a + b for a, b in zip(left, share)]
    for i, r in enumerate(rows):
        ax.text(1.01, i, f"n={r['injected']}", va="center", fontsize=7)
    ax.margins(y=0.005)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the faults that fired")
    ax.tick_params(axis="y", labelsize=7)
    sdc = sum(r["outcomes"].get("SDC", 0) for r in rows)
    total = sum(r["injected"] for r in rows)
    ax.set_title(f"vigil fault campaign: {total} faults fired, {sdc} silent data corruptions "
                 f"(seed {d.get('seed')})", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.6 / max(1, len(rows)) - 0.02),
              ncol=len(OUTCOMES), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    print(f"chart written to {png_path}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    plot(sys.argv[1], sys.argv[2])
