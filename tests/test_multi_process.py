"""Two `waitpoint serve` processes on one database, both schedulers on: every token ends
exactly once, whether it times out or is completed through either process."""

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import create_engine, text

from .support import TOKENS, ServerProcess, create_database, drop_database

pytestmark = pytest.mark.slow


def test_two_servers_never_time_out_or_decide_a_token_twice(tmp_path):
    url = create_database(tmp_path)
    servers = [
        ServerProcess(url, tmp_path, WAITPOINT_SWEEP_INTERVAL="0.1").start() for _ in range(2)
    ]
    try:
        key = servers[0].new_key("multi")
        auth = {"Authorization": f"Bearer {key}"}
        clients = [httpx.Client(base_url=s.url, headers=auth, timeout=30) for s in servers]
        # 200 tokens due at the same moment, created through both servers.
        deadline = time.time() + 12
        due = datetime.fromtimestamp(deadline, UTC).isoformat()
        with ThreadPoolExecutor(8) as pool:
            tokens = list(
                pool.map(
                    lambda i: clients[i % 2].post(TOKENS, json={"timeout": due}).json(), range(200)
                )
            )
        assert time.time() < deadline - 1, "creating the tokens took too long to race"
        applied = []
        lock = threading.Lock()

        def complete(i):
            token = tokens[i]
            client = clients[(i // 2) % 2]  # not always the server that made it
            path = "/api/" + token["url"].split("/api/", 1)[1]
            response = client.post(path, json={"by": i}, headers={"Authorization": ""})
            assert response.status_code == 200, response.text
            if response.json()["applied"]:
                with lock:
                    applied.append(token["id"])

        # Half are completed (twice each, once per server), racing the deadline and the sweeps.
        time.sleep(max(0.0, deadline - 1.0 - time.time()))
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(complete, [i for i in range(0, 200, 2) for _ in range(2)]))
        time.sleep(max(0.0, deadline + 2 - time.time()))  # both sweeps have run since

        engine = create_engine(url)
        with engine.connect() as conn:
            rows = dict(conn.execute(text("SELECT public_id, status FROM tokens")).all())
            completions = conn.execute(text("SELECT count(*) FROM completions")).scalar()
            timeouts_by = dict(
                conn.execute(
                    text(
                        "SELECT source, count(*) FROM events"
                        " WHERE type = 'waitpoint.timed_out' GROUP BY source"
                    )
                ).all()
            )
        engine.dispose()
        statuses = [rows[t["id"].removeprefix("waitpoint_")] for t in tokens]
        completed = statuses.count("COMPLETED")
        timed_out = statuses.count("TIMED_OUT")
        assert completed + timed_out == 200  # nothing left waiting
        assert len(applied) == len(set(applied)) == completed == completions
        # Each time-out is recorded once: by a sweep, or by a completion that arrived after
        # the deadline (a loaded machine) and stored the time-out instead. What the sweeps
        # say they did, added up over both servers, is theirs exactly.
        assert sum(timeouts_by.values()) == timed_out
        assert set(timeouts_by) <= {"sweep", "request"}
        swept = 0
        for server in servers:
            server.stop()
            log = server.log_path.read_text()
            swept += sum(int(n) for n in re.findall(r"timed out (\d+) token", log))
        assert swept == timeouts_by.get("sweep", 0)
        assert timed_out > 0 and completed > 0
    finally:
        for client in locals().get("clients", []):
            client.close()
        for server in servers:
            server.stop()
        drop_database(url)
