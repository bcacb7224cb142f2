#!/usr/bin/python3
"""Draws `vigil-bench faults` results as a PNG bar chart: one bar per cell (workload, mode, method,
fault kind), split by outcome as a share of the faults that fired, with each cell's count; and
prints the cells as a Markdown table. Several JSON files (campaigns with different seeds) are
added up cell by cell.

usage: plot_faults.py RESULTS.json [MORE.json ...] CHART.png

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


def merge(paths):
    """The cells of every file, added up; and the seeds."""
    cells, seeds = {}, []
    for path in paths:
        d = json.load(open(path))
        seeds.append(d.get("seed"))
        for r in d.get("rows") or []:
            key = (r["workload"], r["mode"], r["method"], r["fault"])
            c = cells.setdefault(key, {"workload": key[0], "mode": key[1], "method": key[2],
                                       "fault": key[3], "injected": 0, "outcomes": {}})
            c["injected"] += r["injected"]
            for name, n in r["outcomes"].items():
                c["outcomes"][name] = c["outcomes"].get(name, 0) + n
    if not cells:
        raise SystemExit(f"error: {', '.join(paths)}: no rows to plot")
    return [cells[k] for k in sorted(cells)], seeds


def table(rows):
    names = [n for n, _ in OUTCOMES] + ["not fired"]
    print("| workload | mode | method | fault | fired | " + " | ".join(names) + " |")
    print("|---" * (5 + len(names)) + "|")
    for r in rows:
        counts = " | ".join(str(r["outcomes"].get(n, 0)) for n in names)
        print(f"| {r['workload']} | {r['mode']} | {r['method']} | {r['fault']} | "
              f"{r['injected']} | {counts} |")


def plot(results_paths, png_path):
    rows, seeds = merge(results_paths)
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
                 f"(seed {', '.join(str(s) for s in seeds)})", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.6 / max(1, len(rows)) - 0.02),
              ncol=len(OUTCOMES), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    print(f"chart written to {png_path}")
    return rows


if __name__ == "__main__":
    if len(sys.argv) < 3 or not sys.argv[-1].endswith(".png"):
        raise SystemExit(__doc__)
    table(plot(sys.argv[1:-1], sys.argv[-1]))
