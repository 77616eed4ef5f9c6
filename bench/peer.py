"""Waitpoint beside n8n, the workflow engine people would otherwise use for this, at the
same job: create a waiting item and get its secret URL, then resume it through that URL.

    python bench/peer.py [sqlite] [postgresql]     (``make bench-peer``)

n8n 2.8.4 runs its "Wait → Resume: On Webhook Call" workflow; the peer harness in
``bench/peer/n8n`` (or ``WAITPOINT_PEER_HARNESS``) installs it from npm into a temporary
folder, starts it, and drives any service with its own Python client (stdlib
``http.client``, one keep-alive connection per thread). The same
client drives ``waitpoint serve`` with its default settings on a fresh database (rate
limits counted but set out of reach, as in ``hotpaths.py``). Rounds alternate between the
two, since the machine drifts; the ratios are medians of the per-round ratios.

Memory is the PSS of each server's whole process tree (forked workers share pages; RSS
would count them once per process), at idle before the first round and after the last.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, SERVE_ENV, support, tree_cpu_seconds, tree_pss_kib, write_results

HARNESS = Path(os.environ.get("WAITPOINT_PEER_HARNESS", ROOT / "bench" / "peer" / "n8n"))
PEER_DIR = Path(os.environ.get("PEER_DIR", Path(tempfile.gettempdir()) / "peer-n8n"))
ROUNDS = 2
COUNT = 1000
WARMUP = 200
CONCURRENCY = 8
TOKENS = "/api/v1/waitpoints/tokens"


def harness(pid: int, *args: str) -> dict:
    """One run of the harness's client; its summary (the ``RESULT_JSON`` line), with the CPU
    time the server's whole process tree used per operation (creates and resumes alike,
    warm-up included)."""
    cpu_before = tree_cpu_seconds(pid)
    out = subprocess.run(
        [sys.executable, str(HARNESS / "bench.py"), "-c", str(CONCURRENCY), "-n", str(COUNT)]
        + ["--warmup", str(WARMUP), *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT_JSON "))
    run = json.loads(line.removeprefix("RESULT_JSON "))["runs"][0]
    for phase in ("create", "resume"):
        if run[phase]["err"]:
            raise RuntimeError(f"{args[1]}: {phase} errors {run[phase]['errors']}")
    operations = 2 * (COUNT + WARMUP)
    run["server_cpu_ms_per_op"] = (tree_cpu_seconds(pid) - cpu_before) / operations * 1000
    return run


def start_n8n() -> int:
    subprocess.run([str(HARNESS / "setup.sh")], check=True, stdout=subprocess.DEVNULL)
    return int((PEER_DIR / "n8n.pid").read_text())


def stop_n8n() -> None:
    subprocess.run([str(HARNESS / "setup.sh"), "stop"], check=False, stdout=subprocess.DEVNULL)


def n8n_round(pid: int) -> dict:
    return harness(pid, "--label", "n8n")


def waitpoint_round(server: support.ServerProcess, key: str, kind: str) -> dict:
    return harness(
        server.proc.pid,
        "--label",
        f"waitpoint-{kind}",
        "--create-url",
        server.url + TOKENS,
        "--resume-field",
        "url",
        "--id-field",
        "",
        "--db",
        "none",
        "--pid",
        str(server.proc.pid),
        "--header",
        f"Authorization: Bearer {key}",
        "--create-body",
        '{"timeout":"1h","tags":["peer"]}',
        "--resume-ok",
        '"success":true',
    )


def pss_mib(pid: int) -> float:
    return round(tree_pss_kib(pid) / 1024, 1)


def main(kinds: list[str]) -> None:
    if not (HARNESS / "bench.py").exists():
        sys.exit(
            f"the n8n peer harness is not at {HARNESS}: set WAITPOINT_PEER_HARNESS to the "
            "folder holding its setup.sh and bench.py"
        )
    tmp = Path(tempfile.mkdtemp())
    servers: dict[str, tuple[support.ServerProcess, str, str]] = {}
    try:
        n8n_pid = start_n8n()
        for kind in kinds:
            from common import use_database

            use_database(kind)
            url = support.create_database(tmp)
            server = support.ServerProcess(url, tmp, **SERVE_ENV).start()
            servers[kind] = (server, server.new_key("peer"), url)
        time.sleep(3)  # settled: the workers' first sweeps and outbox polls are done
        idle = {kind: pss_mib(s.proc.pid) for kind, (s, _, _) in servers.items()}
        idle["n8n"] = pss_mib(n8n_pid)
        rounds: list[dict] = []
        for number in range(ROUNDS):
            result = {"n8n": n8n_round(n8n_pid)}
            for kind, (server, key, _) in servers.items():
                result[kind] = waitpoint_round(server, key, kind)
            rounds.append(result)
            print(f"round {number + 1}: " + _line(result), flush=True)
        after = {kind: pss_mib(s.proc.pid) for kind, (s, _, _) in servers.items()}
        after["n8n"] = pss_mib(n8n_pid)
    finally:
        for server, _, url in servers.values():
            server.stop()
            support.drop_database(url)
        stop_n8n()
    rows = [_summarize(kind, rounds, idle, after) for kind in kinds]
    rows.append(
        {
            "part": "peer",
            "database": "n8n",
            "what": "n8n 2.8.4 (SQLite)",
            "create_ops_s": _median(rounds, "n8n", "create"),
            "resume_ops_s": _median(rounds, "n8n", "resume"),
            "pss_idle_mib": idle["n8n"],
            "pss_after_mib": after["n8n"],
        }
    )
    for row in rows:
        print(json.dumps(row))
    write_results("peer", rows)


def _median(rounds: list[dict], who: str, phase: str) -> float:
    return round(statistics.median(r[who][phase]["ops_s"] for r in rounds), 1)


def _summarize(kind: str, rounds: list[dict], idle: dict, after: dict) -> dict:
    def ratio(phase):
        return round(
            statistics.median(r[kind][phase]["ops_s"] / r["n8n"][phase]["ops_s"] for r in rounds),
            1,
        )

    def cpu_ms(who):
        return round(statistics.median(r[who]["server_cpu_ms_per_op"] for r in rounds), 2)

    return {
        "part": "peer",
        "database": kind,
        "what": f"waitpoint beside n8n at concurrency {CONCURRENCY}",
        "create_ops_s": _median(rounds, kind, "create"),
        "resume_ops_s": _median(rounds, kind, "resume"),
        "create_ratio": ratio("create"),
        "resume_ratio": ratio("resume"),
        "server_cpu_ms_per_op": cpu_ms(kind),
        "n8n_server_cpu_ms_per_op": cpu_ms("n8n"),
        "create_p50_ms": statistics.median(r[kind]["create"]["p50_ms"] for r in rounds),
        "resume_p50_ms": statistics.median(r[kind]["resume"]["p50_ms"] for r in rounds),
        "pss_idle_mib": idle[kind],
        "pss_after_mib": after[kind],
        "target": "ratio >= 10, PSS <= 120 MiB",
        "met": ratio("create") >= 10
        and ratio("resume") >= 10
        and max(idle[kind], after[kind]) <= 120,
    }


def _line(result: dict) -> str:
    return "  ".join(
        f"{who} create {r['create']['ops_s']}/s resume {r['resume']['ops_s']}/s"
        for who, r in result.items()
    )


if __name__ == "__main__":
    main(sys.argv[1:] or ["sqlite", "postgresql"])
