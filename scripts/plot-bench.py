#!/usr/bin/env python3
"""Plots `make bench`'s call benchmark (benches/call_bench/) from target/bench/:

    plot-bench.py [DIR]

- setup.png: call set-up times, one dot per call (auto-answer invite → first frame,
  manual answer press → first frame), each side;
- cost.png: CPU (% of one core) and RSS over a call, the box against the Python SDK
  peer and against the bare livekitwebrtcsink/src pipeline (the floor), at each size;
- latency.png: glass-to-glass latency histograms, box → peer, peer → box (the call
  screen) and peer → peer, at each size.

Each figure's title names the machine, the build and the date from report.json.
"""

import csv
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> int:
    d = Path(sys.argv[1] if len(sys.argv) > 1 else "target/bench")
    report = json.loads((d / "report.json").read_text())
    label = f"{report['machine']}; {report['build']} build; {report['date']}"

    series = [
        ("auto: invite → caller's 1st frame", report["setup_auto"]["invite_to_caller_first_frame"]),
        ("auto: invite → box's 1st frame", report["setup_auto"]["invite_to_box_first_frame"]),
        ("manual: answer → caller's 1st frame", report["setup_manual"]["answer_to_caller_first_frame"]),
        ("manual: answer → box's 1st frame", report["setup_manual"]["answer_to_box_first_frame"]),
    ]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for i, (name, s) in enumerate(series):
        xs = s.get("samples_ms")
        if not xs:  # CALL_BENCH_N=0: not measured
            continue
        ax.scatter(xs, [i] * len(xs), s=14, alpha=0.6)
        ax.plot([s["p50_ms"]] * 2, [i - 0.3, i + 0.3], color="black", lw=2)
        ax.plot([s["p95_ms"]] * 2, [i - 0.3, i + 0.3], color="black", lw=1, ls="--")
    ax.set_yticks(range(len(series)), [n for n, _ in series])
    ax.set_xlabel("ms (solid: p50, dashed: p95)")
    ax.set_title(f"callbox call set-up\n{label}", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(d / "setup.png", dpi=110)

    costs = report["cost"]
    fig, axes = plt.subplots(2, len(costs), figsize=(6 * len(costs), 6), squeeze=False)
    for col, c in enumerate(costs):
        with open(d / f"cost-{c['size']}.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        t = [float(r["t_s"]) for r in rows]
        for row, (what, unit) in enumerate([("cpu_pct", "CPU, % of a core"), ("rss_mib", "RSS, MiB")]):
            ax = axes[row][col]
            ax.plot(t, [float(r[f"box_{what}"]) for r in rows], label="callbox", color="#2563eb")
            ax.plot(t, [float(r[f"peer_{what}"]) for r in rows], label="Python SDK peer",
                    color="#dc2626")
            floor_csv = d / f"floor-{c['size']}.csv"
            if floor_csv.exists():
                with open(floor_csv, newline="") as f:
                    floor = list(csv.DictReader(f))
                ax.plot([float(r["t_s"]) for r in floor], [float(r[f"floor_{what}"]) for r in floor],
                        label="bare livekitwebrtcsink/src", color="#6b7280", linestyle="--")
            ax.set_ylabel(unit)
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(f"full-duplex {c['size']}@30", fontsize=10)
                ax.legend(fontsize=8)
            else:
                ax.set_xlabel("s in the call")
    fig.suptitle(f"callbox vs LiveKit Python SDK, one call\n{label}", fontsize=9)
    fig.tight_layout()
    fig.savefig(d / "cost.png", dpi=110)
    g2g = report.get("glass_to_glass", [])
    if g2g:
        fig, axes = plt.subplots(1, len(g2g), figsize=(6 * len(g2g), 4), squeeze=False)
        for col, g in enumerate(g2g):
            ax = axes[0][col]
            for key, name, colour in [("box_to_peer", "box → Python SDK peer", "#2563eb"),
                                      ("peer_to_box", "Python SDK peer → box (screen)", "#16a34a"),
                                      ("peer_to_peer", "Python SDK peer → peer", "#dc2626")]:
                xs = g[key].get("samples_ms")
                if xs:
                    ax.hist(xs, bins=range(0, int(max(xs)) + 5, 2), alpha=0.55, color=colour,
                            label=f"{name}: p50 {g[key]['p50_ms']:.0f}, p95 {g[key]['p95_ms']:.0f} ms")
            ax.set_title(f"glass-to-glass {g['size']}@30", fontsize=10)
            ax.set_xlabel("ms")
            ax.set_ylabel("frames")
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
        fig.suptitle(f"callbox glass-to-glass latency\n{label}", fontsize=9)
        fig.tight_layout()
        fig.savefig(d / "latency.png", dpi=110)
    print(f"plot-bench: {d / 'setup.png'}, {d / 'cost.png'}, {d / 'latency.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
