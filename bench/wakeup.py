"""Wake-up latency: completion -> a long-polling client's answer, p50 and p99.

    python bench/wakeup.py [--waiters 1,100,500] [--db sqlite|postgresql|both]

For each database and each N: start `waitpoint serve` (its production settings) on a
fresh database, create N tokens, hold N concurrent waits (one connection each), then
complete the tokens one after another through their callback URLs. The latency of a
token is the time from sending its completion to its waiter receiving the answer.
While the N waits are held, it also times ordinary requests (retrieve) as a check
that waiters do not starve the server. Figures go to bench/results/wakeup.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from common import RssSampler, support, use_database, write_results

TOKENS = "/api/v1/waitpoints/tokens"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run_round(base: str, key: str, n: int) -> dict:
    auth = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=n + 20, max_keepalive_connections=n + 20)
    async with httpx.AsyncClient(
        base_url=base, headers=auth, limits=limits, timeout=httpx.Timeout(10, read=90)
    ) as http:
        tokens = [(await http.post(TOKENS, json={"timeout": "10m"})).json() for _ in range(n)]
        received: dict[str, float] = {}
        early = []

        async def waiter(token):
            # As the SDK does: a wait answered long before its window while still WAITING
            # means that server process was at capacity; pause instead of spinning.
            while token["id"] not in received:
                asked = time.perf_counter()
                body = (await http.get(f"{TOKENS}/{token['id']}/wait?timeout=60s")).json()
                if body["status"] != "WAITING":
                    received[token["id"]] = time.perf_counter()
                elif time.perf_counter() - asked < 59.5:
                    early.append(token["id"])
                    await asyncio.sleep(0.5)

        tasks = [asyncio.create_task(waiter(t)) for t in tokens]
        await asyncio.sleep(1.0 + n / 200)  # every wait is registered on the server

        # Ordinary requests while the waits are held.
        others = []
        for token in tokens[: min(n, 50)]:
            started = time.perf_counter()
            response = await http.get(f"{TOKENS}/{token['id']}")
            assert response.status_code == 200
            others.append(time.perf_counter() - started)

        sent: dict[str, float] = {}
        acked: dict[str, float] = {}
        for token in tokens:
            sent[token["id"]] = time.perf_counter()
            response = await http.post(token["url"], json={"ok": True})
            acked[token["id"]] = time.perf_counter()
            assert response.json()["applied"] is True
            await asyncio.sleep(0.005)  # a steady flow, not one burst
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)

    latencies = [received[i] - sent[i] for i in sent]
    # From the completion's acknowledgement (it is committed by then): the wake-up alone.
    after_ack = [max(0.0, received[i] - acked[i]) for i in sent]
    completions = [acked[i] - sent[i] for i in sent]
    return {
        "waiters": n,
        "completion_p50_ms": round(percentile(completions, 50) * 1000, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "after_ack_p50_ms": round(percentile(after_ack, 50) * 1000, 1),
        "after_ack_p99_ms": round(percentile(after_ack, 99) * 1000, 1),
        "other_requests_p50_ms": round(statistics.median(others) * 1000, 1),
        "other_requests_max_ms": round(max(others) * 1000, 1),
        "answered_early_at_capacity": len(early),
    }


def bench_database(kind: str, counts: list[int], tmp: Path) -> list[dict]:
    use_database(kind)
    rows = []
    for n in counts:
        url = support.create_database(tmp)
        server = support.ServerProcess(url, tmp, WAITPOINT_SWEEP_INTERVAL="0.5").start()
        try:
            key = server.new_key("bench")
            with RssSampler(server.proc.pid) as rss:
                row = asyncio.run(run_round(server.url, key, n))
            row["peak_rss_mib"] = rss.peak_mib
            row["database"] = kind
            rows.append(row)
            print(
                f"{kind:10} {n:4} waiters | from completion sent: p50 {row['p50_ms']:6.1f} ms "
                f"p99 {row['p99_ms']:6.1f} ms | from completion acknowledged: p50 "
                f"{row['after_ack_p50_ms']:5.1f} ms p99 {row['after_ack_p99_ms']:6.1f} ms | "
                f"completion request p50 {row['completion_p50_ms']:5.1f} ms | other requests "
                f"p50 {row['other_requests_p50_ms']:5.1f} ms max "
                f"{row['other_requests_max_ms']:5.1f} ms | waits answered early (capacity) "
                f"{row['answered_early_at_capacity']} | peak RSS {row['peak_rss_mib']} MiB",
                flush=True,
            )
        finally:
            server.stop()
            support.drop_database(url)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiters", default="1,100,500")
    parser.add_argument("--db", default="both", choices=["sqlite", "postgresql", "both"])
    args = parser.parse_args()
    counts = [int(n) for n in args.waiters.split(",")]
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row for kind in kinds for row in bench_database(kind, counts, Path(tmp))]
    write_results(
        "wakeup",
        {"machine": os.uname().nodename, "cpus": os.cpu_count(), "rows": rows},
    )


if __name__ == "__main__":
    main()
