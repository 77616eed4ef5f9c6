"""Hot paths under load: create, retrieve, callback-complete and list (WAITING + a tag),
against `waitpoint serve` in its default production configuration, each beside its floor:
a bare Flask app under the same gunicorn settings. wrk drives both (2 threads, fixed
connections); ratios are product/floor requests per second.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from common import ROOT, RssSampler, bulk_load, fresh_app, support, write_results, wrk

SECONDS = 8
CONNECTIONS = 32
LUA = ROOT / "bench" / "lua" / "paths.lua"
TOKENS = "/api/v1/waitpoints/tokens"


def floor(tmp: Path) -> dict:
    from app.serve import server_options

    port = support.free_port()
    options = server_options("127.0.0.1", port, {})
    command = [
        str(Path(support.waitpoint_command()[0]).with_name("gunicorn")),
        "-k",
        "gthread",
        "-w",
        str(options["workers"]),
        "--threads",
        str(options["threads"]),
        "-b",
        f"127.0.0.1:{port}",
        "--chdir",
        str(ROOT / "bench"),
        "floor:app",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import time

        import httpx

        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        paths = tmp / "floor.txt"
        results = {}
        for method, line in (("GET", "GET /"), ("POST", 'POST / {"tags":["bench"]}')):
            paths.write_text(line + "\n")
            results[method] = wrk(
                f"http://127.0.0.1:{port}",
                SECONDS,
                CONNECTIONS,
                LUA,
                {"WRK_PATHS": str(paths), "WRK_AUTH": "Bearer x"},
            )
        return results
    finally:
        proc.terminate()
        proc.wait()


def product(kind: str, tmp: Path) -> dict:
    from app import lifecycle
    from app.capability import callback_path
    from app.extensions import db
    from app.models import Token

    url, app, key = fresh_app(kind, tmp)
    try:
        # Tokens to complete (each once) and a listable, tagged population.
        bulk_load(app, 30_000, waiting_share=1.0, fixed_tags=("bench",), kinds=False)
        with app.app_context(), app.test_request_context():
            ids = [lifecycle.public_id_of(t) for t in db.session.query(Token).limit(30_000)]
            callbacks = [callback_path(i) for i in ids]
            db.engine.dispose()
        server = support.ServerProcess(url, tmp).start()
        env = {"WRK_AUTH": f"Bearer {key}"}
        runs = {
            "create": [f'POST {TOKENS} {{"tags":["bench","kind:new"],"timeout":"1h"}}'],
            "retrieve": [f"GET {TOKENS}/{i}" for i in ids[:1000]],
            "callback": [f'POST {p} {{"approved":true}}' for p in callbacks],
            "list": [f"GET {TOKENS}?filter[status]=WAITING&filter[tags]=customer:42&page[size]=25"],
        }
        results = {}
        try:
            with RssSampler(server.proc.pid) as rss:
                for name, lines in runs.items():
                    paths = tmp / f"{name}.txt"
                    paths.write_text("\n".join(lines) + "\n")
                    results[name] = wrk(
                        server.url, SECONDS, CONNECTIONS, LUA, {**env, "WRK_PATHS": str(paths)}
                    )
            results["peak_rss_mib"] = rss.peak_mib
        finally:
            server.stop()
        return results
    finally:
        app.extensions["waitpoint_waits"].close()
        support.drop_database(url)


def run(kinds: list[str]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = floor(Path(tmp))
        for kind in kinds:
            measured = product(kind, Path(tmp))
            for name in ("create", "retrieve", "callback", "list"):
                ref = base["POST" if name in ("create", "callback") else "GET"]
                row = {
                    "part": "hot paths",
                    "database": kind,
                    "what": name,
                    **measured[name],
                    "floor_rps": ref["rps"],
                    "ratio": round(measured[name]["rps"] / ref["rps"], 2),
                    "peak_rss_mib": measured["peak_rss_mib"],
                }
                rows.append(row)
                print(
                    f"{kind:10} {name:9} {row['rps']:8.1f} req/s (floor {ref['rps']:8.1f}, "
                    f"ratio {row['ratio']:.2f})  p50 {row.get('p50_ms', 0):7.2f} ms  "
                    f"p99 {row.get('p99_ms', 0):7.2f} ms  errors {row['errors']}",
                    flush=True,
                )
    return rows


if __name__ == "__main__":
    import sys

    result = run(sys.argv[1:] or ["sqlite", "postgresql"])
    write_results("hotpaths", result)
