#!/usr/bin/python3
"""Checks the JSON of a vigil-bench smoke run, so that a smoke test fails on a wrong result, not
only on a crash.

  smoke_check.py latency JSON ITERATIONS [--baseline]   transport / channel round trips
  smoke_check.py ssr JSON                               SSR call latency with and without SSR
  smoke_check.py run JSON ROWS                          vigil-run vs plain programs
  smoke_check.py faults JSON CELLS [PNG]                a fault campaign (and its chart)
  smoke_check.py tls JSON CONNECTS ITERATIONS ROWS      plaintext vs mutual TLS

latency: every size has a round-trip summary over ITERATIONS samples with 0 < p50 <= p99 <= max;
with --baseline every size also has its baseline measured in the same run, in at least two rounds
alternating with vigil's, and both ratios.
run: exactly ROWS replicated rows (besides the plain runs), every replicated output equal to the plain run's.
tls: ROWS rows (bootstrap connects, then one per rpc size), each with a plaintext and a TLS
summary over CONNECTS / ITERATIONS samples and their p50 ratio.
faults: CELLS rows, at least as many faults fired, no silent data corruption anywhere, and every
fired fault classified.
A latency target that is missed is reported (printed), not failed: this machine's numbers are
noisy and emulated; the benchmarks themselves are where targets are judged.
"""
import json
import sys


def fail(msg):
    print(f"FAIL: {sys.argv[2]}: {msg}")
    sys.exit(1)


def summary(s, what, count=None):
    for k in ("p50_us", "p99_us", "max_us"):
        if not isinstance(s.get(k), (int, float)):
            fail(f"{what}: no {k}")
    if not 0 < s["p50_us"] <= s["p99_us"] <= s["max_us"]:
        fail(f"{what}: not 0 < p50 <= p99 <= max: {s}")
    if count is not None and s.get("count") != count:
        fail(f"{what}: {s.get('count')} samples, expected {count}")


def main():
    kind, path = sys.argv[1], sys.argv[2]
    d = json.load(open(path))
    if kind == "latency":
        iterations = int(sys.argv[3])
        rows = d.get("results") or fail("no results")
        for r in rows:
            summary(r["vigil_rtt"], f"{r['bytes']} bytes", iterations)
            if "--baseline" in sys.argv:
                if "ratio_p50" not in r or "ratio_p99" not in r:
                    fail(f"{r['bytes']} bytes: no baseline ratio ({r.get('baseline_error', 'no baseline')})")
                if not (r["ratio_p50"] > 0 and r["ratio_p99"] > 0):
                    fail(f"{r['bytes']} bytes: ratios {r['ratio_p50']}, {r['ratio_p99']}")
                # vigil and the baseline alternated (--pairs >= 2 in every smoke run), each
                # round with its own ratio, the median between their extremes.
                rounds = r.get("rounds", [])
                if r.get("rounds_alternated", 0) < 2 or len(rounds) != r["rounds_alternated"]:
                    fail(f"{r['bytes']} bytes: {r.get('rounds_alternated')} rounds, expected >= 2")
                if any("ratio_p50" not in x for x in rounds):
                    fail(f"{r['bytes']} bytes: a round without its baseline ratio")
                if not r["ratio_p50_min"] <= r["ratio_p50"] <= r["ratio_p50_max"]:
                    fail(f"{r['bytes']} bytes: median ratio {r['ratio_p50']} outside "
                         f"[{r['ratio_p50_min']}, {r['ratio_p50_max']}]")
                print(f"{r['bytes']:>6} bytes: p50 {r['vigil_rtt']['p50_us']:.2f} us, "
                      f"{r['ratio_p50']:.2f}x the baseline (reported, not judged here)")
            else:
                print(f"{r['bytes']:>6} bytes: p50 {r['vigil_rtt']['p50_us']:.2f} us")
    elif kind == "ssr":
        summary(d["with_ssr"], "with SSR")
        summary(d["without_ssr"], "without SSR")
        if not d.get("ratio_p50", 0) > 0:
            fail(f"ratio_p50 {d.get('ratio_p50')}")
        rec = d.get("recovery") or fail("no recovery figures")
        if not rec.get("clients", 0) > 0:
            fail(f"recovery: {rec}")
        print(f"ssr: p50 {d['ratio_p50']:.2f}x without SSR (reported, not judged here)")
    elif kind == "run":
        want = int(sys.argv[3])
        rows = [r for r in d.get("rows", []) if r.get("mode") != "plain"]  # the references
        if len(rows) != want:
            fail(f"{len(rows)} rows, expected {want}")
        for r in rows:
            if r.get("output_matches_plain") is not True:
                fail(f"{r['program']} {r['method']} {r['mode']}: output differs from the plain run")
        print(f"run: {len(rows)} rows, every output equal to the plain run's")
    elif kind == "faults":
        want = int(sys.argv[3])
        rows = d.get("rows", [])
        if len(rows) != want:
            fail(f"{len(rows)} cells, expected {want}")
        for r in rows:
            o = r["outcomes"]
            name = f"{r['workload']} {r['mode']} {r['fault']}"
            if o["SDC"] != 0:
                fail(f"{name}: {o['SDC']} silent data corruption(s)")
            if sum(v for k, v in o.items() if k != "not fired") != r["injected"]:
                fail(f"{name}: outcomes do not add up to {r['injected']}")
        fired = sum(r["injected"] for r in rows)
        if fired < len(rows):
            fail(f"only {fired} faults fired over {len(rows)} cells")
        print(f"faults: {fired} fired over {len(rows)} cells, 0 silent data corruptions")
        if len(sys.argv) > 4:  # the chart, drawn by plot_faults.py
            import plot_faults
            png = sys.argv[4]
            plot_faults.plot([path], png)
            with open(png, "rb") as f:
                if f.read(8) != b"\x89PNG\r\n\x1a\n":
                    fail(f"{png} is not a PNG")
    elif kind == "tls":
        connects, iterations, want = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        rows = d.get("results", [])
        if len(rows) != want:
            fail(f"{len(rows)} rows, expected {want}")
        for i, r in enumerate(rows):
            n = connects if i == 0 else iterations
            summary(r["plaintext"], f"{r['what']} {r['bytes']} plaintext", n)
            summary(r["tls"], f"{r['what']} {r['bytes']} TLS", n)
            if not r.get("tls_over_plaintext_p50", 0) > 0:
                fail(f"{r['what']}: no ratio")
            print(f"{r['what']} {r['bytes']}: TLS {r['tls_over_plaintext_p50']:.2f}x plaintext at p50 "
                  "(reported, not judged here)")
    else:
        fail(f"unknown kind '{kind}'")
    print(f"ok: {path}")


if __name__ == "__main__":
    main()
