"""Profile a hot path in the real server: py-spy samples every ``waitpoint serve`` worker
while wrk drives one path, then prints where the CPU went.

    python bench/profile_server.py create|retrieve|callback|list [sqlite|postgresql]

Unlike ``profile_paths.py`` (in-process, Flask's test client), this sees what a deployment
pays: gunicorn's worker, its threads, the WSGI middleware and the database under
concurrency. Only samples of threads holding the GIL count (``--gil``), so idle threads
waiting for a socket are not mistaken for work. Prints the share of samples per frame,
inclusive (a frame and what it calls) and by itself, the top frames of each.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, SERVE_ENV, fresh_app, support, wrk

SECONDS = 12
CONNECTIONS = 32
TOKENS = "/api/v1/waitpoints/tokens"
LUA = ROOT / "bench" / "lua" / "paths.lua"


def lines_for(path: str, app) -> list[str]:
    from common import bulk_load

    from app.domain.capability import callback_path
    from app.domain.stored import ID_PREFIX
    from app.extensions import db
    from app.models import Token

    bulk_load(app, 40_000, waiting_share=1.0, fixed_tags=("bench",), kinds=False)
    with app.app_context(), app.test_request_context():
        ids = [ID_PREFIX + t.public_id for t in db.session.query(Token).limit(40_000)]
        callbacks = [f'POST {callback_path(i)} {{"approved":true}}' for i in ids]
        db.engine.dispose()
    return {
        "create": [f'POST {TOKENS} {{"tags":["bench","kind:new"],"timeout":"1h"}}'],
        "retrieve": [f"GET {TOKENS}/{i}" for i in ids[:1000]],
        "callback": callbacks,
        "list": [f"GET {TOKENS}?filter[status]=WAITING&filter[tags]=customer:42&page[size]=25"],
    }[path]


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def main(path: str, kind: str) -> None:
    tmp = Path(tempfile.mkdtemp())
    url, app, key = fresh_app(kind, tmp)
    lines = lines_for(path, app)
    (tmp / "paths.txt").write_text("\n".join(lines) + "\n")
    server = support.ServerProcess(url, tmp, **SERVE_ENV).start()
    spy = str(Path(sys.executable).with_name("py-spy"))
    try:
        workers = worker_pids(server.proc.pid)
        env = {"WRK_PATHS": str(tmp / "paths.txt"), "WRK_AUTH": f"Bearer {key}"}
        wrk(server.url, 2, CONNECTIONS, LUA, env)  # warm up
        outs = [tmp / f"spy-{pid}.txt" for pid in workers]
        spies = [
            subprocess.Popen(
                [spy, "record", "--gil", "-r", "250", "-d", str(SECONDS - 1), "-f", "raw"]
                + ["-o", str(out), "-p", str(pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid, out in zip(workers, outs, strict=True)
        ]
        result = wrk(server.url, SECONDS, CONNECTIONS, LUA, env)
        for spy_proc in spies:
            spy_proc.wait()
    finally:
        server.stop()
        app.extensions["waitpoint_waits"].close()
        support.drop_database(url)
    print(f"{path} on {kind}: {result.get('rps')} req/s under py-spy")
    report([line for out in outs for line in out.read_text().splitlines()])


def report(stacks: list[str], top: int = 45) -> None:
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    packages: collections.Counter = collections.Counter()
    total = 0
    for line in stacks:
        frames, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        raw = frames.split(";")
        names = [_short(f) for f in raw]
        for name in set(names):
            inclusive[name] += n
        own[names[-1]] += n
        packages[_package(raw[-1])] += n
    print(f"{total} samples\n\ninclusive:")
    for name, n in inclusive.most_common(top):
        print(f"{100 * n / total:6.1f}%  {name}")
    print("\nself, by package:")
    for name, n in packages.most_common():
        print(f"{100 * n / total:6.1f}%  {name}")
    print("\nself:")
    for name, n in own.most_common(top):
        print(f"{100 * n / total:6.1f}%  {name}")


def _package(frame: str) -> str:
    """The library a frame is in (``app/<part>`` for ours); a bare module is the stdlib's."""
    path = frame.partition(" (")[2].rsplit(":", 1)[0]
    parts = Path(path).parts
    if len(parts) < 2:
        return "stdlib"
    return "/".join(parts[:2]) if parts[0] == "app" else parts[0]


def _short(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``func (module.py)``, merging a function's lines."""
    name, _, where = frame.partition(" (")
    module = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(module).parts
    return f"{name} ({'/'.join(parts[-2:])})"


if __name__ == "__main__":
    main(*(sys.argv[1:] + ["create", "sqlite"][len(sys.argv) - 1 :]))
