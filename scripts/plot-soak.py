#!/usr/bin/env python3
"""Plots a soak run (tests/soak.rs): the box's RSS, open descriptors and threads after
each call, from target/soak/soak.csv to target/soak/soak.png.

    plot-soak.py [CSV] [PNG] [--title TEXT]

Prints the steady-state figures: the median RSS of the last 400 calls (or the last 80 %)
and how far the samples stray from it.
"""

import argparse
import csv
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="?", default="target/soak/soak.csv")
    ap.add_argument("png", nargs="?", default="target/soak/soak.png")
    ap.add_argument("--title", default="callbox soak")
    a = ap.parse_args()
    with open(a.csv, newline="") as f:
        rows = [{k: int(v) for k, v in r.items()} for r in csv.DictReader(f)]
    calls = [r for r in rows if r["call"] > 0]
    if not calls:
        print("plot-soak: no calls in", a.csv, file=sys.stderr)
        return 1
    steady = calls[-400:] if len(calls) >= 500 else calls[len(calls) // 5:]
    rss = [r["rss_kib"] / 1024 for r in steady]
    med = statistics.median(rss)
    lo, hi = min(rss), max(rss)
    print(
        f"plot-soak: {len(calls)} calls; steady state (last {len(steady)}): median RSS "
        f"{med:.0f} MiB, {lo:.0f}-{hi:.0f} MiB ({(lo / med - 1) * 100:+.1f} % / "
        f"{(hi / med - 1) * 100:+.1f} %); fds {steady[0]['fds']}-{steady[-1]['fds']}, "
        f"threads {steady[0]['threads']}-{steady[-1]['threads']}"
    )
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True,
                                   gridspec_kw={"height_ratios": [2, 1]})
    x = [r["call"] for r in rows]
    ax1.plot(x, [r["rss_kib"] / 1024 for r in rows], color="#2563eb", lw=1.2,
             label="RSS after the call (MiB)")
    if any(r.get("heap_in_use_kib") for r in rows):
        ax1.plot(x, [r["heap_in_use_kib"] / 1024 for r in rows], color="#0891b2", lw=1.0,
                 label="of which malloc in use (MiB)")
    ax1.axhline(med, color="#16a34a", lw=0.8, ls="--", label=f"steady median {med:.0f} MiB")
    ax1.axhspan(med * 0.95, med * 1.05, color="#16a34a", alpha=0.08, label="±5 %")
    ax1.set_ylabel("MiB")
    ax1.set_ylim(bottom=0)
    ax1.legend(loc="lower right")
    ax1.set_title(a.title)
    ax2.plot(x, [r["fds"] for r in rows], color="#9333ea", lw=1.2, label="open fds")
    ax2.plot(x, [r["threads"] for r in rows], color="#ea580c", lw=1.2, label="threads")
    ax2.set_xlabel("call (0: idle, before the first)")
    ax2.set_ylim(bottom=0)
    ax2.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(a.png, dpi=100)
    print("plot-soak: wrote", a.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
