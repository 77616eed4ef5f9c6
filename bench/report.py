"""The benchmark summary: every figure beside its floor or target, as one table.

    python bench/report.py [--markdown]

Reads bench/results/{hotpaths,scale,expiry,wakeup,peer}.json (written by the other
benchmarks; peer.json by ``make bench-peer``), prints the table and writes it as
bench/results/summary.json.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

# The targets of the performance issues, on this machine: throughput against the floor's
# (the long-run goal is 0.7 / 0.8), and server CPU per request at most this many times
# the floor's.
HOT_PATH_RATIO = {"create": 0.35, "callback": 0.35, "retrieve": 0.65}
HOT_PATH_CPU = {"create": 3.0, "callback": 3.0, "retrieve": 1.5}
PEER_RATIO, PSS_MIB = 10.0, 120.0
SCALE_RATIO, SCALE_MS = 1.5, 50.0
EXPIRY_SECONDS, LAG_P99_MS = 5.0, 1000.0
WAKE_P50_MS, WAKE_P99_MS = 50.0, 250.0


def load(name: str):
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def hot_path_rows(results) -> list[dict]:
    rows = []
    for r in results or []:
        target = HOT_PATH_RATIO.get(r["what"])
        rows.append(
            {
                "part": "hot paths",
                "database": r["database"],
                "what": f"{r['what']} req/s (p50 / p99 ms)",
                "value": f"{r['rps']:.0f} ({r['p50_ms']:.1f} / {r['p99_ms']:.1f})",
                "floor": f"{r['floor_rps']:.0f} req/s",
                "ratio": r["ratio"],
                "target": f"ratio >= {target}" if target else "-",
                "met": None if target is None else r["ratio"] >= target,
                "peak_rss_mib": r.get("peak_rss_mib"),
            }
        )
        most = HOT_PATH_CPU.get(r["what"])
        if most is not None and r.get("floor_cpu_ms_per_request"):
            cpu, floor = r["cpu_ms_per_request"], r["floor_cpu_ms_per_request"]
            rows.append(
                {
                    "part": "hot paths",
                    "database": r["database"],
                    "what": f"{r['what']} server CPU ms per request",
                    "value": f"{cpu:.2f}",
                    "floor": f"{floor:.2f} ms",
                    "ratio": round(cpu / floor, 2),
                    "target": f"ratio <= {most}",
                    "met": cpu / floor <= most,
                    "peak_rss_mib": r.get("peak_rss_mib"),
                }
            )
    return rows


def peer_rows(results) -> list[dict]:
    """Waitpoint beside n8n (``make bench-peer``): throughput ratios, and memory (PSS)."""
    rows = []
    n8n = next((r for r in results or [] if r["database"] == "n8n"), None)
    for r in results or []:
        if r["database"] == "n8n":
            continue
        for phase in ("create", "resume"):
            rows.append(
                {
                    "part": "peer",
                    "database": r["database"],
                    "what": f"{phase}s/s beside n8n's, concurrency 8",
                    "value": f"{r[f'{phase}_ops_s']:.0f}",
                    "floor": f"{n8n[f'{phase}_ops_s']:.0f} /s (n8n)" if n8n else "-",
                    "ratio": r[f"{phase}_ratio"],
                    "target": f"ratio >= {PEER_RATIO:.0f}",
                    "met": r[f"{phase}_ratio"] >= PEER_RATIO,
                    "peak_rss_mib": None,
                }
            )
        rows.append(
            {
                "part": "peer",
                "database": r["database"],
                "what": "PSS MiB of the server, idle / after the run",
                "value": f"{r['pss_idle_mib']:.0f} / {r['pss_after_mib']:.0f}",
                "floor": (
                    f"{n8n['pss_idle_mib']:.0f} / {n8n['pss_after_mib']:.0f} (n8n)" if n8n else "-"
                ),
                "ratio": None,
                "target": f"<= {PSS_MIB:.0f}",
                "met": max(r["pss_idle_mib"], r["pss_after_mib"]) <= PSS_MIB,
                "peak_rss_mib": None,
            }
        )
    return rows


def scale_rows(results) -> list[dict]:
    if not results:
        return []
    rows = []
    rss = {(r["database"], r["tokens"]): r.get("peak_rss_mib") for r in results["rows"]}
    for r in results["ratios"]:
        small = next(
            x
            for x in results["rows"]
            if (x["database"], x["tokens"]) == (r["database"], r["smallest"])
        )
        rows.append(
            {
                "part": "scale",
                "database": r["database"],
                "what": f"{r['what']} p50 ms at {r['largest']:,} tokens",
                "value": f"{r['p50_ms']:.2f}",
                "floor": f"{small[r['what']]['p50_ms']:.2f} ms at {r['smallest']:,}",
                "ratio": r["ratio"],
                "target": f"ratio <= {SCALE_RATIO}, < {SCALE_MS:.0f} ms",
                "met": r["ratio"] <= SCALE_RATIO and r["p50_ms"] < SCALE_MS,
                "peak_rss_mib": rss.get((r["database"], r["largest"])),
            }
        )
    return rows


def expiry_rows(results) -> list[dict]:
    rows = []
    for r in results or []:
        rows.append(
            {
                "part": "expiry",
                "database": r["database"],
                "what": f"{r['due_tokens']:,} due at once: s until all TIMED_OUT",
                "value": f"{r['all_timed_out_seconds']:.2f}",
                "floor": "-",
                "ratio": None,
                "target": f"<= {EXPIRY_SECONDS:.0f} s",
                "met": r["all_timed_out_seconds"] <= EXPIRY_SECONDS,
                "peak_rss_mib": r.get("peak_rss_mib"),
            }
        )
        rows.append(
            {
                "part": "expiry",
                "database": r["database"],
                "what": "steady flow: lag p99 ms (p50)",
                "value": f"{r['lag_p99_ms']:.0f} ({r['lag_p50_ms']:.0f})",
                "floor": "-",
                "ratio": None,
                "target": f"p99 < {LAG_P99_MS:.0f} ms",
                "met": r["lag_p99_ms"] < LAG_P99_MS,
                "peak_rss_mib": r.get("peak_rss_mib"),
            }
        )
    return rows


def wakeup_rows(results) -> list[dict]:
    rows = []
    for r in (results or {}).get("rows", []):
        at_target = r["waiters"] >= 500
        rows.append(
            {
                "part": "wake-up",
                "database": r["database"],
                "what": f"{r['waiters']} waiters: p50 / p99 ms",
                "value": f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f}",
                "floor": "-",
                "ratio": None,
                "target": f"p50 < {WAKE_P50_MS:.0f}, p99 < {WAKE_P99_MS:.0f}" if at_target else "-",
                "met": (r["p50_ms"] < WAKE_P50_MS and r["p99_ms"] < WAKE_P99_MS)
                if at_target
                else None,
                "peak_rss_mib": r.get("peak_rss_mib"),
            }
        )
    return rows


HEADER = ("part", "db", "figure", "value", "floor / baseline", "ratio", "target", "met", "RSS MiB")


def cells(r: dict) -> tuple:
    return (
        r["part"],
        r["database"],
        r["what"],
        r["value"],
        r["floor"],
        "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
        r["target"],
        {True: "yes", False: "NO", None: "-"}[r["met"]],
        "-" if r["peak_rss_mib"] is None else f"{r['peak_rss_mib']:.0f}",
    )


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    header = HEADER
    lines = [header] + [cells(r) for r in rows]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)
            ).rstrip()
        )
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


def cpu_rows(results) -> list[tuple]:
    """Server CPU time per request, product and floor: where the hot-path ratios come from."""
    return [
        (
            r["database"],
            r["what"],
            f"{r['cpu_ms_per_request']:.2f}",
            f"{r['floor_cpu_ms_per_request']:.2f}",
        )
        for r in results or []
        if "cpu_ms_per_request" in r
    ]


def cpu_table(rows: list[tuple], as_markdown: bool) -> str:
    header = ("db", "path", "server CPU ms per request", "floor's")
    if as_markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    return "\n".join("  ".join(f"{c:<12}" for c in line).rstrip() for line in [header, *rows])


def main() -> None:
    rows = (
        hot_path_rows(load("hotpaths"))
        + scale_rows(load("scale"))
        + expiry_rows(load("expiry"))
        + wakeup_rows(load("wakeup"))
        + peer_rows(load("peer"))
    )
    as_markdown = "--markdown" in sys.argv
    print(markdown(rows) if as_markdown else table(rows))
    print()
    print(cpu_table(cpu_rows(load("hotpaths")), as_markdown))
    judged = [r for r in rows if r["met"] is not None]
    met = sum(r["met"] for r in judged)
    print(f"\ntargets met: {met} of {len(judged)}")
    summary = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "targets_met": met,
        "targets": len(judged),
        "rows": rows,
    }
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("wrote bench/results/summary.json")


if __name__ == "__main__":
    main()
