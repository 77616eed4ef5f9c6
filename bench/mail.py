"""Mail to named approvers: how fast it goes out, and what it costs a create.

- Burst: BURST tokens with 3 approvers each are created at once (16 clients) against
  ``waitpoint serve`` sending to a local SMTP server (aiosmtpd, in this process): the
  time from the first create until the SMTP server has accepted all 3 x BURST emails.
- Cost: create throughput (wrk, as in hotpaths.py) with 3 approvers against without,
  on the same server, in alternation, twice: with the scheduler off (what a create itself
  costs: the mail is only written to the outbox, never sent on the request path; target
  >= 0.90), and with the mailer sending meanwhile in the same processes and on the same two
  cores as the SMTP server and wrk (what the whole flow costs this machine).

    python bench/mail.py [sqlite] [postgresql]      (results in results/mail.json)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hotpaths
import httpx
from aiosmtpd.controller import Controller
from common import fresh_app, start_server, write_results
from hotpaths import drive

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support import free_port  # noqa: E402

TOKENS = "/api/v1/waitpoints/tokens"
hotpaths.SECONDS = 6  # twice hotpaths' runs: a ratio of two similar rates needs steadier ones
BURST = 1000
ROUNDS = 5
WITH_APPROVERS = (
    '{"tags":["bench"],"timeout":"1h","title":"Refund 240 EUR?","requiredApprovals":2,'
    '"approvers":[{"email":"ada@example.com","name":"Ada"},{"email":"bob@example.com"},'
    '{"email":"carol@example.com"}]}'
)
WITHOUT = '{"tags":["bench"],"timeout":"1h","title":"Refund 240 EUR?"}'


class Counter:
    """aiosmtpd's handler: counts what it accepts, and when the last one came."""

    def __init__(self):
        self.count = 0
        self.last = 0.0
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.count += len(envelope.rcpt_tos)
            self.last = time.monotonic()
        return "250 OK"

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.count < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.count >= count


def burst(server, key: str, inbox: Counter) -> dict:
    start_count = inbox.count
    body = WITH_APPROVERS.replace('"bench"', '"burst"')
    with httpx.Client(base_url=server.url, timeout=60) as http:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

        def create(_i: int) -> None:
            response = http.post(TOKENS, content=body, headers=headers)
            assert response.status_code == 200, response.text

        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(create, range(BURST)))
        created = time.monotonic() - started
    arrived = inbox.wait_for(start_count + 3 * BURST, timeout=300)
    total = inbox.last - started
    row = {
        "part": "burst",
        "what": f"{BURST} tokens x 3 approvers created at once -> all {3 * BURST} emails accepted",
        "creates_s": round(created, 2),
        "all_mail_s": round(total, 2) if arrived else None,
        "emails_per_s": round(3 * BURST / total, 1) if arrived else None,
        "target": "< 60 s",
    }
    row["met"] = bool(arrived and total < 60)
    return row


def cost(server, key: str, tmp: Path, sending: bool) -> dict:
    auth = f"Bearer {key}"
    rounds = []
    for r in range(ROUNDS):
        result = {}
        order = ("approvers", "none") if r % 2 == 0 else ("none", "approvers")
        for name in order:
            body = WITH_APPROVERS if name == "approvers" else WITHOUT
            result[name] = drive(server.url, server.proc.pid, [f"POST {TOKENS} {body}"], tmp, auth)
        rounds.append(result)
    row = {
        "part": "create cost",
        "what": "create with 3 approvers vs without, "
        + ("mail sent meanwhile" if sending else "the request path alone (scheduler off)"),
        "approvers_rps": round(statistics.median(r["approvers"]["rps"] for r in rounds), 1),
        "none_rps": round(statistics.median(r["none"]["rps"] for r in rounds), 1),
        "ratio": round(
            statistics.median(r["approvers"]["rps"] / r["none"]["rps"] for r in rounds), 2
        ),
        "cpu_ms_per_create": {
            name: round(statistics.median(r[name]["cpu_ms_per_request"] for r in rounds), 2)
            for name in ("approvers", "none")
        },
        "target": "(informational)" if sending else ">= 0.90",
    }
    if not sending:
        row["met"] = row["ratio"] >= 0.90
    return row


def run(kinds: list[str]) -> list[dict]:
    rows = []
    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp:
            url, app, key = fresh_app(kind, Path(tmp))
            inbox = Counter()
            smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
            smtp.start()
            server = start_server(
                url, Path(tmp), WAITPOINT_SMTP_URL=f"smtp://127.0.0.1:{smtp.port}"
            )
            quiet = None
            try:
                for row in (burst(server, key, inbox), cost(server, key, Path(tmp), True)):
                    rows.append({"database": kind, **row})
                    print(kind, row, flush=True)
                server.stop()
                quiet = start_server(url, Path(tmp), WAITPOINT_SCHEDULER="off")
                row = cost(quiet, key, Path(tmp), False)
                rows.append({"database": kind, **row})
                print(kind, row, flush=True)
            finally:
                server.stop()
                if quiet is not None:
                    quiet.stop()
                smtp.stop()
                with app.app_context():
                    from app.extensions import db

                    db.engine.dispose()
    return rows


if __name__ == "__main__":
    kinds = sys.argv[1:] or ["sqlite", "postgresql"]
    write_results("mail", run(kinds))
