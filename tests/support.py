"""Test helpers: the app on a test database, API calls, throwaway databases and real server
processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
from sqlalchemy.engine import make_url

from app import create_app

ROOT = Path(__file__).resolve().parent.parent
# Set by .ci/run (and by hand) to run the whole suite on PostgreSQL.
PG_URL = os.environ.get("WAITPOINT_TEST_DATABASE_URL", "").strip() or None
SECRET = "test-secret-key-with-enough-length"
# Operators' passwords in process: scrypt's cost is for attackers, not for the tests.
# Server processes keep the default, so that it is still what a login checks there.
PASSWORD_HASH = "pbkdf2:sha256:1000"
TOKENS = "/api/v1/waitpoints/tokens"


def make_app(database_url: str, **config):
    environ = {
        "SECRET_KEY": SECRET,
        "DATABASE_URL": database_url,
        "WAITPOINT_PASSWORD_HASH": PASSWORD_HASH,
    }
    return create_app({"TESTING": True, **config}, environ=environ)


class Api:
    """The test client with an API key: ``api.post(path, json=...)``."""

    def __init__(self, client, key: str):
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"}

    def __getattr__(self, method):
        call = getattr(self.client, method)

        def request(path, **kwargs):
            headers = {**self.headers, **kwargs.pop("headers", {})}
            return call(path, headers=headers, **kwargs)

        return request

    def create(self, **body):
        response = self.client.post(TOKENS, json=body, headers=self.headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def retrieve(self, token_id: str) -> dict:
        response = self.client.get(f"{TOKENS}/{token_id}", headers=self.headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()


def error_of(response, status: int) -> str:
    """A JSON error's message, once its status and its shape (``{"error": ...}``) are checked."""
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert set(body) == {"error"}
    return body["error"]


def callback_path(token: dict) -> str:
    """The path of a token's callback URL (also its approval page), whatever its host."""
    return urlsplit(token["url"]).path


def decide_path(token: dict) -> str:
    """Where the approval page's form posts its decision."""
    return (
        callback_path(token)
        .replace("/api/v1/waitpoints/tokens/", "/approve/")
        .replace("/callback/", "/")
    )


# Named approvers, as a create body lists them.
ADA = {"email": "ada@example.com", "name": "Ada"}
BOB = {"email": "bob@example.com", "name": "Bob"}
CAROL = {"email": "carol@example.com"}


def personal_path(app, token: dict, position: int) -> str:
    """The path of the personal link of a token's ``position``-th named approver."""
    from app.domain import capability

    with app.test_request_context():
        return capability.approver_path(token["id"], position)


def vote(client, app, token: dict, position: int, approve=True, comment=""):
    """A named approver's vote, as their page's form posts it (CSRF off in the test app)."""
    button = {"approve": "Approve"} if approve else {"reject": "Reject"}
    return client.post(personal_path(app, token, position), data={"comment": comment, **button})


def on_postgresql() -> bool:
    return PG_URL is not None


def _pg_admin_dsn() -> str:
    url = make_url(PG_URL).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def create_database(tmp_dir: Path) -> str:
    """A new, empty database: a file under ``tmp_dir``, or a PostgreSQL database."""
    if not on_postgresql():
        return f"sqlite:///{tmp_dir / f'waitpoint-{uuid.uuid4().hex[:8]}.db'}"
    name = f"waitpoint_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    name = make_url(url).database
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def waitpoint_command() -> list[str]:
    exe = Path(sys.executable).with_name("waitpoint")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "app.cli"]


def server_env(database_url: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAITPOINT_", "DATABASE_URL"))}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=SECRET,
        WAITPOINT_SWEEP_INTERVAL="0.2",
        WAITPOINT_WORKERS="2",
    )
    env.update(extra)
    return env


@contextmanager
def server_on_new_database(tmp_dir: Path, **env: str):
    """A started ``waitpoint serve`` on a database of its own, stopped and dropped after."""
    url = create_database(tmp_dir)
    server = ServerProcess(url, tmp_dir, **env).start()
    try:
        yield server
    finally:
        server.stop()
        drop_database(url)


class ServerProcess:
    """``waitpoint serve`` on a free port, as an operator would run it."""

    def __init__(self, database_url: str, log_dir: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = server_env(database_url, **env)
        self.log_path = log_dir / f"server-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> ServerProcess:
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [*waitpoint_command(), "serve", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass  # not listening yet
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*waitpoint_command(), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    def new_key(self, project: str = "default") -> str:
        return self.cli("keys", "create", "--project", project).stdout.strip().splitlines()[-1]
