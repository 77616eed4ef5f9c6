"""A real server is killed and started again: nothing acknowledged is lost."""

import json
import signal
import time

import httpx
import pytest
from sqlalchemy import create_engine, text

from .support import TOKENS, ServerProcess, create_database, drop_database

pytestmark = pytest.mark.slow


def stored_statuses(database_url, public_ids):
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT public_id, status FROM tokens")).all()
    finally:
        engine.dispose()
    by_id = {f"waitpoint_{pid}": status for pid, status in rows}
    return {i: by_id.get(i) for i in public_ids}


def test_acknowledged_work_survives_a_crash_and_overdue_tokens_time_out(tmp_path):
    url = create_database(tmp_path)
    server = ServerProcess(url, tmp_path).start()
    try:
        key = server.new_key("durable")
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=10) as http:
            created = [http.post(TOKENS, json={"tags": [f"n{i}"]}).json() for i in range(20)]
            completed = created[:10]
            for i, token in enumerate(completed):
                via_api = i % 2 == 0
                r = (
                    http.post(f"{TOKENS}/{token['id']}/complete", json={"data": {"i": i}})
                    if via_api
                    else httpx.post(token["url"], json={"i": i})
                )
                assert r.json()["applied"] is True
            falls_due = http.post(TOKENS, json={"timeout": "3s"}).json()
        server.stop(signal.SIGKILL)  # no graceful shutdown: a crash

        time.sleep(3.5)  # the deadline passes while nothing runs
        assert stored_statuses(url, [falls_due["id"]]) == {falls_due["id"]: "WAITING"}

        server.start()
        restarted_at = time.monotonic()
        while stored_statuses(url, [falls_due["id"]])[falls_due["id"]] != "TIMED_OUT":
            assert time.monotonic() - restarted_at < 2.0, "not timed out within 2 s of restart"
            time.sleep(0.05)

        with httpx.Client(base_url=server.url, headers=auth, timeout=10) as http:
            for i, token in enumerate(created):
                body = http.get(f"{TOKENS}/{token['id']}").json()
                if token in completed:
                    assert body["status"] == "COMPLETED"
                    assert json.loads(body["output"]) == {"i": i}
                else:
                    assert body["status"] == "WAITING"
                    assert body["tags"] == [f"n{i}"]
    finally:
        server.stop()
        drop_database(url)
