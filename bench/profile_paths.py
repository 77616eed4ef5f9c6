"""Profile one hot path in-process with pyinstrument.

    python bench/profile_paths.py create|retrieve|callback|list [sqlite|postgresql]

Builds the real app on a fresh database, warms up, then profiles 300 requests
through Flask's test client and prints the time per request and the call tree.
The same requests without the profiler give the time per request (best of 3).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import migrated_app, support, use_database
from pyinstrument import Profiler

TOKENS = "/api/v1/waitpoints/tokens"
ROUNDS = 300


def main(path: str, kind: str) -> None:
    from app.cli import create_api_key

    use_database(kind)
    url = support.create_database(Path(tempfile.mkdtemp()))
    app = migrated_app(url)
    with app.app_context():
        key = create_api_key("profile")
    client = app.test_client()
    auth = {"Authorization": f"Bearer {key}"}
    body = {"tags": ["bench", "kind:new"], "timeout": "1h"}
    created = [client.post(TOKENS, json=body, headers=auth).get_json() for _ in range(5 * ROUNDS)]
    callbacks = iter(token["url"].removeprefix("http://localhost") for token in created)
    requests = {
        "create": lambda: client.post(TOKENS, json=body, headers=auth),
        "retrieve": lambda: client.get(f"{TOKENS}/{created[0]['id']}", headers=auth),
        "callback": lambda: client.post(next(callbacks), json={"approved": True}),
        "list": lambda: client.get(
            f"{TOKENS}?filter[status]=WAITING&filter[tags]=bench&page[size]=25", headers=auth
        ),
    }
    send = requests[path]
    for _ in range(50):
        assert send().status_code == 200
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(ROUNDS):
            send()
        best = min(best, (time.perf_counter() - started) / ROUNDS)
    profiler = Profiler(interval=0.0002)
    with profiler:
        for _ in range(ROUNDS):
            send()
    print(f"{path} on {kind}: {best * 1000:.3f} ms per request (best of 3, no profiler)")
    print(profiler.output_text(unicode=False, color=False, show_all="--all" in sys.argv))
    app.extensions["waitpoint_waits"].close()
    support.drop_database(url)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--all"]
    main(*(args + ["retrieve", "sqlite"][len(args) :]))
