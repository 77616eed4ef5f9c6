"""What a serving process holds: the app is built once in gunicorn's master and shared by
the forked workers; the master keeps no database file open; Alembic loads only in the
child that migrates; a SQLite deployment never loads the PostgreSQL driver."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from app.cli import migrate_database
from app.extensions import db

from .support import (
    ROOT,
    ServerProcess,
    create_database,
    drop_database,
    free_port,
    make_app,
    server_env,
    waitpoint_command,
)

LOADED = """
import os, sys
sys.path.insert(0, sys.argv[1])
from app import create_app
create_app()
print(" ".join(sorted(name for name in sys.modules if name.split(".")[0] in sys.argv[2:])))
"""


def test_a_serving_app_loads_neither_alembic_nor_on_sqlite_the_postgresql_driver(tmp_path):
    env = {**os.environ, "WAITPOINT_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}"}
    packages = ["psycopg", "alembic", "mako", "pygments", "flask", "sqlalchemy"]
    out = subprocess.run(
        [sys.executable, "-c", LOADED, str(ROOT), *packages],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "flask" in out and "sqlalchemy" in out  # the probe sees what was loaded
    assert {name.split(".")[0] for name in out} == {"flask", "sqlalchemy"}


def test_serve_refuses_to_start_when_the_migration_fails(tmp_path):
    url = create_database(tmp_path)
    app = make_app(url)
    with app.app_context():
        migrate_database()
        db.session.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
        db.session.commit()
        db.engine.dispose()
    try:
        done = subprocess.run(
            [*waitpoint_command(), "serve", "--port", str(free_port())],
            cwd=ROOT,
            env=server_env(url),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        drop_database(url)
    assert done.returncode != 0
    assert "f00d" in done.stderr  # alembic's own reason, from the child that migrated
    assert "the database could not be migrated" in done.stderr
    assert "Listening at" not in done.stderr


def _open_files(pid: int) -> list[str]:
    names = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            names.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return names


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(child) for child in out.split()]


@pytest.mark.slow
def test_workers_serve_and_sweep_while_the_master_holds_no_database_file(tmp_path):
    url = create_database(tmp_path)
    server = ServerProcess(url, tmp_path, WAITPOINT_SWEEP_INTERVAL="0.2").start()
    try:
        key = server.new_key()
        auth = {"Authorization": f"Bearer {key}"}
        tokens = f"{server.url}/api/v1/waitpoints/tokens"
        ids = [
            httpx.post(tokens, json={"timeout": "1s"}, headers=auth).json()["id"] for _ in range(6)
        ]
        deadline = time.monotonic() + 15
        statuses: set[str] = set()
        while time.monotonic() < deadline:
            statuses = {httpx.get(f"{tokens}/{i}", headers=auth).json()["status"] for i in ids}
            if statuses == {"TIMED_OUT"}:
                break
            time.sleep(0.2)
        assert statuses == {"TIMED_OUT"}  # a worker's scheduler, started after the fork
        workers = _children(server.proc.pid)
        assert len(workers) == 2
        if url.startswith("sqlite"):
            database = Path(url.removeprefix("sqlite:///")).name
            assert any(database in name for w in workers for name in _open_files(w))
            assert not [name for name in _open_files(server.proc.pid) if database in name]
    finally:
        server.stop()
        drop_database(url)
