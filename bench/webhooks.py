"""Webhooks: from an event's commit to a receiver, and what the outbox costs.

- Lag at a steady 50 decisions/s: waiting tokens are completed through their callback
  URLs, paced, for STEADY_SECONDS; lag = arrival at a local receiver - the event's
  ``timestamp`` (the time of its write; both clocks are this host's).
- Burst: BURST tokens fall due at once and the sweep times them out: the time from their
  deadline until the receiver has every one of their events.
- Cost: create and callback throughput (wrk, as in hotpaths.py) for a project subscribed
  to every event against a project with no endpoint, on the same server, in alternation.

    python bench/webhooks.py [sqlite] [postgresql]      (results in results/webhooks.json)
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from common import bulk_load, fresh_app, start_server, write_results
from hotpaths import drive

TOKENS = "/api/v1/waitpoints/tokens"
STEADY_RATE = 50
STEADY_SECONDS = 20
BURST = 10_000
ROUNDS = 3
CREATE = '{"tags":["bench"],"timeout":"1h"}'


class Receiver:
    """A local receiver that answers 204 and notes when each event arrived.

    asyncio on a thread of this process, as light as a receiver can be: it is not what is
    measured, but it shares the server's two cores.
    """

    def __init__(self):
        self.arrivals: dict[str, tuple[float, bytes]] = {}
        self._parsed: dict[str, tuple[float, dict]] = {}
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait(10)
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0)
        )
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()

    async def _connection(self, reader, writer) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                headers = dict(
                    line.split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line
                )
                fields = {k.lower(): v for k, v in headers.items()}
                body = await reader.readexactly(int(fields.get(b"content-length", b"0")))
                self.arrivals.setdefault(fields[b"webhook-id"].decode(), (time.time(), body))
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def of_type(self, event_type: str) -> list[tuple[float, dict]]:
        for msg_id in [m for m in list(self.arrivals) if m not in self._parsed]:
            at, body = self.arrivals[msg_id]
            self._parsed[msg_id] = (at, json.loads(body))  # each body parsed once
        return [(at, body) for at, body in self._parsed.values() if body["type"] == event_type]

    def wait_for(self, event_type: str, count: int, timeout: float) -> int:
        """How many events of the type arrived, waiting up to ``timeout`` for ``count``."""
        end = time.monotonic() + timeout
        while len(self.of_type(event_type)) < count and time.monotonic() < end:
            time.sleep(0.2)
        return len(self.of_type(event_type))

    def close(self):
        self._loop.call_soon_threadsafe(self._loop.stop)


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def _endpoint(app, project_id: int, url: str, types: list[str] | None) -> None:
    """The project's only enabled endpoint from now on: those of earlier parts are disabled."""
    from app.domain import webhooks
    from app.domain.timeutil import utcnow

    with app.app_context():
        for earlier in webhooks.endpoints(project_id):
            webhooks.set_enabled(project_id, earlier.id, False, "an earlier part of the bench")
        webhooks.create_endpoint(project_id, url, types, utcnow())


def _callback_paths(app, project_id: int, limit: int) -> list[str]:
    from app.domain.capability import callback_path
    from app.domain.stored import ID_PREFIX
    from app.extensions import db
    from app.models import WAITING, Token

    with app.app_context(), app.test_request_context():
        rows = (
            db.session.query(Token.public_id)
            .filter(Token.project_id == project_id, Token.status == WAITING)
            .order_by(Token.pk.desc())
            .limit(limit)
        )
        return [callback_path(ID_PREFIX + public_id) for (public_id,) in rows]


def steady(app, server, receiver) -> dict:
    count = STEADY_RATE * STEADY_SECONDS
    bulk_load(app, count, waiting_share=1.0, fixed_tags=("steady",), kinds=False)
    paths = _callback_paths(app, 1, count)
    _endpoint(app, 1, receiver.url, ["waitpoint.completed"])
    start = time.monotonic() + 0.5
    with httpx.Client(base_url=server.url, timeout=30) as http, ThreadPoolExecutor(16) as pool:

        def complete(i: int) -> None:
            time.sleep(max(0.0, start + i / STEADY_RATE - time.monotonic()))
            http.post(paths[i], json={"approved": True})

        list(pool.map(complete, range(count)))
    arrived = receiver.wait_for("waitpoint.completed", count, 30)
    lags = [
        (at - _epoch(body["timestamp"])) * 1000
        for at, body in receiver.of_type("waitpoint.completed")
    ]
    row = {
        "part": "webhook lag at 50 decisions/s",
        "decisions": count,
        "delivered": arrived,
        "lag_p50_ms": round(statistics.median(lags), 1),
        "lag_p99_ms": round(_percentile(lags, 0.99), 1),
        "target": "p99 < 1000 ms",
    }
    row["met"] = arrived == count and row["lag_p99_ms"] < 1000
    return row


def burst(app, receiver) -> dict:
    from app.domain.timeutil import utcnow

    _endpoint(app, 1, receiver.url, ["waitpoint.timed_out"])
    due = utcnow() + timedelta(seconds=5)
    bulk_load(app, BURST, waiting_share=1.0, timeout_at=due, fixed_tags=("burst",), kinds=False)
    time.sleep(max(0.0, (due - utcnow()).total_seconds()))
    started = time.monotonic()
    arrived = receiver.wait_for("waitpoint.timed_out", BURST, 120)
    seconds = time.monotonic() - started
    row = {
        "part": f"webhook burst of {BURST} time-outs",
        "delivered": arrived,
        "all_delivered_s": round(seconds, 1),
        "target": "< 60 s",
    }
    row["met"] = arrived == BURST and seconds < 60
    return row


def cost(app, server, receiver, tmp: Path, keys: dict) -> list[dict]:
    """Create and callback throughput, subscribed project vs a project without endpoints."""
    _endpoint(app, 1, receiver.url, None)
    lines = {}
    for name, project_id in (("subscribed", 1), ("none", 2)):
        bulk_load(app, 12_000, waiting_share=1.0, fixed_tags=("cost",), project_id=project_id)
        paths = _callback_paths(app, project_id, 12_000)
        lines[name] = {
            "create": lambda _r: [f"POST {TOKENS} {CREATE}"],
            "callback": lambda r, paths=paths: [
                f'POST {p} {{"approved":true}}' for p in paths[r * 3000 : (r + 1) * 3000]
            ],
        }
    rows = []
    for path in ("create", "callback"):
        rounds = []
        for r in range(ROUNDS):
            result = {}
            order = ("subscribed", "none") if r % 2 == 0 else ("none", "subscribed")
            for name in order:
                auth = f"Bearer {keys[name]}"
                result[name] = drive(server.url, server.proc.pid, lines[name][path](r), tmp, auth)
            rounds.append(result)
        ratio = statistics.median(r["subscribed"]["rps"] / r["none"]["rps"] for r in rounds)
        row = {
            "part": "outbox cost under load",
            "what": path,
            "subscribed_rps": round(statistics.median(r["subscribed"]["rps"] for r in rounds), 1),
            "none_rps": round(statistics.median(r["none"]["rps"] for r in rounds), 1),
            "ratio": round(ratio, 2),
            "target": ">= 0.90",
        }
        row["met"] = row["ratio"] >= 0.90
        rows.append(row)
    return rows


def run(kinds: list[str]) -> list[dict]:
    from app.cli import create_api_key

    rows = []
    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp:
            url, app, key = fresh_app(kind, Path(tmp))
            with app.app_context():
                quiet = create_api_key("quiet")
            receiver = Receiver()
            server = start_server(url, Path(tmp), WAITPOINT_WEBHOOK_ALLOW_PRIVATE="on")
            try:
                for row in (steady(app, server, receiver), burst(app, receiver)):
                    rows.append({"database": kind, **row})
                    print(kind, row, flush=True)
                keys = {"subscribed": key, "none": quiet}
                for row in cost(app, server, receiver, Path(tmp), keys):
                    rows.append({"database": kind, **row})
                    print(kind, row, flush=True)
            finally:
                server.stop()
                receiver.close()
                with app.app_context():
                    from app.extensions import db

                    db.engine.dispose()
    return rows


if __name__ == "__main__":
    kinds = sys.argv[1:] or ["sqlite", "postgresql"]
    write_results("webhooks", run(kinds))
