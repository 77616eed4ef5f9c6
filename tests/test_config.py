"""Configuration from the environment: strict, with messages naming the variable."""

import subprocess

import pytest

from app import create_app
from app.config import ConfigError, from_environment

from .support import ROOT, waitpoint_command


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"WAITPOINT_SCHEDULER": "maybe"}, "WAITPOINT_SCHEDULER"),
        ({"WAITPOINT_SWEEP_INTERVAL": "fast"}, "WAITPOINT_SWEEP_INTERVAL"),
        ({"WAITPOINT_SWEEP_INTERVAL": "nan"}, "WAITPOINT_SWEEP_INTERVAL"),
        ({"WAITPOINT_SWEEP_BATCH": "0"}, "WAITPOINT_SWEEP_BATCH"),
        ({"WAITPOINT_CREATE_MAX_BYTES": "1e6"}, "WAITPOINT_CREATE_MAX_BYTES"),
        ({"WAITPOINT_COMPLETE_MAX_BYTES": "-1"}, "WAITPOINT_COMPLETE_MAX_BYTES"),
        ({"WAITPOINT_PUBLIC_URL": "approvals.example.com"}, "WAITPOINT_PUBLIC_URL"),
        ({"WAITPOINT_PUBLIC_URL": "https://x.example/?a=1"}, "WAITPOINT_PUBLIC_URL"),
        ({"DATABASE_URL": "mysql://root@localhost/db"}, "DATABASE_URL"),
        ({"WAITPOINT_ENV": "staging"}, "WAITPOINT_ENV"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"WAITPOINT_ENV": "production"}, "SECRET_KEY"),
        ({"WAITPOINT_PASSWORD_HASH": "md5"}, "WAITPOINT_PASSWORD_HASH"),
        ({"WAITPOINT_PASSWORD_HASH": "pbkdf2:sha256:0"}, "WAITPOINT_PASSWORD_HASH"),
        ({"WAITPOINT_PASSWORD_HASH": "scrypt:1000:8:1"}, "WAITPOINT_PASSWORD_HASH"),
    ],
)
def test_a_malformed_value_stops_start_up_naming_it(tmp_path, environ, named):
    with pytest.raises(ConfigError, match=named):
        from_environment(tmp_path, environ)


def test_production_never_falls_back_to_a_development_secret(tmp_path):
    (tmp_path / "secret_key").write_text("a-development-secret-on-disk")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        from_environment(tmp_path, {"WAITPOINT_ENV": "production"})


def test_development_generates_and_keeps_a_secret(tmp_path):
    first = from_environment(tmp_path, {})["SECRET_KEY"]
    assert len(first) >= 32
    assert from_environment(tmp_path, {})["SECRET_KEY"] == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_defaults(tmp_path):
    config = from_environment(tmp_path, {})
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'waitpoint.db'}"
    assert config["WAITPOINT_SCHEDULER"] is True
    assert config["WAITPOINT_PUBLIC_URL"] is None
    assert config["WAITPOINT_CREATE_MAX_BYTES"] == 65536
    assert config["WAITPOINT_COMPLETE_MAX_BYTES"] == 1048576
    assert config["WAITPOINT_PASSWORD_HASH"] == "scrypt"  # werkzeug's default


def test_long_poll_capacity_follows_the_threads(tmp_path):
    from app.infra.serve import server_options

    assert from_environment(tmp_path, {})["WAITPOINT_MAX_WAITERS"] == 600
    fewer = {"WAITPOINT_THREADS": "320"}  # only the threads set: the waits follow
    assert from_environment(tmp_path, fewer)["WAITPOINT_MAX_WAITERS"] == 280
    assert server_options("127.0.0.1", 5000, fewer)["threads"] == 320
    with pytest.raises(ConfigError, match="WAITPOINT_THREADS"):
        server_options("127.0.0.1", 5000, {**fewer, "WAITPOINT_MAX_WAITERS": "300"})


def test_values_are_read(tmp_path):
    config = from_environment(
        tmp_path,
        {
            "DATABASE_URL": "postgres://u@db:5432/w",
            "WAITPOINT_PUBLIC_URL": "https://approvals.example.com/",
            "WAITPOINT_SCHEDULER": "off",
            "WAITPOINT_COMPLETE_MAX_BYTES": "2048",
            "WAITPOINT_PASSWORD_HASH": " pbkdf2:sha512:2000 ",
            "SECRET_KEY": "x" * 32,
            "WAITPOINT_ENV": "production",
        },
    )
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db:5432/w"
    assert config["WAITPOINT_PUBLIC_URL"] == "https://approvals.example.com"
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["WAITPOINT_SCHEDULER"] is False
    assert config["WAITPOINT_COMPLETE_MAX_BYTES"] == 2048
    assert config["WAITPOINT_PASSWORD_HASH"] == "pbkdf2:sha512:2000"


def test_the_app_factory_refuses_bad_configuration(tmp_path):
    with pytest.raises(ConfigError, match="WAITPOINT_SCHEDULER"):
        create_app(environ={"WAITPOINT_SCHEDULER": "sometimes", "SECRET_KEY": "x" * 32})


@pytest.mark.slow
def test_the_command_line_reports_a_bad_value_and_exits(tmp_path):
    done = subprocess.run(
        [*waitpoint_command(), "keys", "list"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "WAITPOINT_SWEEP_BATCH": "lots",
            "SECRET_KEY": "x" * 32,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "WAITPOINT_SWEEP_BATCH" in done.stderr
    assert "Traceback" not in done.stderr
