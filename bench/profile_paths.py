"""Profile one hot path in-process with pyinstrument: python bench/profile_paths.py retrieve|create

Builds the real app on a fresh SQLite database, warms up, then profiles 300 requests
through Flask's test client and prints the time per request and the call tree.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import migrated_app, support
from pyinstrument import Profiler

TOKENS = "/api/v1/waitpoints/tokens"


def main(path: str) -> None:
    from app.cli import create_api_key

    app = migrated_app(support.create_database(Path(tempfile.mkdtemp())))
    with app.app_context():
        key = create_api_key("profile")
    client = app.test_client()
    auth = {"Authorization": f"Bearer {key}"}
    body = {"tags": ["bench", "kind:new"], "timeout": "1h"}
    token = client.post(TOKENS, json=body, headers=auth).get_json()["id"]
    requests = {
        "create": lambda: client.post(TOKENS, json=body, headers=auth),
        "retrieve": lambda: client.get(f"{TOKENS}/{token}", headers=auth),
    }
    send = requests[path]
    for _ in range(50):
        send()
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    with profiler:
        for _ in range(300):
            send()
    print(f"{path}: {(time.perf_counter() - started) / 300 * 1000:.2f} ms per request")
    print(profiler.output_text(unicode=False, color=False))
    app.extensions["waitpoint_waits"].close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "retrieve")
