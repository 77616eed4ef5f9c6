"""Concurrency through a real server: many writers, one outcome.

50 threads complete one token through both routes (API key and callback URL)
while both workers' sweeps run; concurrent creates share one idempotency key.
"""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .support import TOKENS

pytestmark = pytest.mark.slow


@pytest.fixture
def http(live_server, live_key):
    with httpx.Client(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {live_key}"},
        timeout=30,
        limits=httpx.Limits(max_connections=60),
    ) as client:
        yield client


def race(n, action):
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        return action(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


@pytest.mark.parametrize("timeout", [None, "1s"], ids=["no-deadline", "deadline-during-race"])
def test_fifty_concurrent_completions_leave_one_outcome(http, timeout):
    body = {"timeout": timeout} if timeout else {}
    tokens = [http.post(TOKENS, json=body).json() for _ in range(4)]
    if timeout:
        time.sleep(0.9)  # let the race straddle the deadline and the sweeps

    for token in tokens:

        def complete(i, token=token):
            if i % 2:
                r = http.post(f"{TOKENS}/{token['id']}/complete", json={"data": {"writer": i}})
            else:
                r = httpx.post(token["url"], json={"writer": i}, timeout=30)
            assert r.status_code == 200, r.text
            return i, r.json()

        answers = race(50, complete)
        winners = [i for i, a in answers if a["applied"]]
        final = http.get(f"{TOKENS}/{token['id']}").json()
        assert {a["status"] for _, a in answers} <= {"COMPLETED", "TIMED_OUT"}
        if final["status"] == "COMPLETED":
            assert len(winners) == 1
            assert json.loads(final["output"]) == {"writer": winners[0]}
            # Every loser was told the outcome that stands.
            assert {a["status"] for _, a in answers} == {"COMPLETED"}
        else:
            assert final["status"] == "TIMED_OUT" and timeout
            assert winners == []
            assert final["outputIsError"] is True


def test_concurrent_creates_with_one_idempotency_key_return_one_token(http):
    for round_ in range(3):
        key = f"race-{round_}-{time.monotonic_ns()}"
        answers = race(20, lambda i, key=key: http.post(TOKENS, json={"idempotencyKey": key}))
        assert {r.status_code for r in answers} == {200}
        bodies = [r.json() for r in answers]
        assert len({b["id"] for b in bodies}) == 1
        assert sorted(b["isCached"] for b in bodies) == [False] + [True] * 19
        listed = http.get(TOKENS, params={"filter[idempotencyKey]": key}).json()["data"]
        assert [t["id"] for t in listed] == [bodies[0]["id"]]
