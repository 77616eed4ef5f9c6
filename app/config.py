"""Configuration read from the environment.

Every value goes through a small strict helper: a malformed value stops start-up
with a ``ConfigError`` naming the variable, instead of being silently replaced by
a default. Layering follows flaskr: these defaults, then ``instance/config.py``
(if present), then the mapping a test passes to ``create_app``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from limits import RateLimitItem
from limits.util import parse_many
from werkzeug.security import generate_password_hash


class ConfigError(RuntimeError):
    """A configuration value is missing or malformed; the message names it."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(environ: dict, name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be one of on/off, true/false, 1/0 (got {raw!r})")


def env_int(environ: dict, name: str, default: int, *, minimum: int = 0) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be an integer (got {raw!r})") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum} (got {value})")
    return value


def env_float(environ: dict, name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number (got {raw!r})") from None
    if not value >= minimum:  # also rejects NaN
        raise ConfigError(f"{name} must be at least {minimum} (got {raw!r})")
    return value


def env_choice(environ: dict, name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)} (got {raw!r})")
    return value


def env_secret(environ: dict, name: str, *, min_length: int = 16) -> str | None:
    """An optional shared secret (a bearer token): long enough, printable, no spaces."""
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip()
    if len(value) < min_length:
        raise ConfigError(f"{name} must be at least {min_length} characters long")
    if not all("!" <= c <= "~" for c in value):
        raise ConfigError(f"{name} must be printable ASCII without spaces")
    return value


def parse_rate_limit(name: str, value) -> tuple[RateLimitItem, ...]:
    """``600/minute`` or ``10/second;600/minute`` (the notation of ``limits``)."""
    try:
        items = tuple(parse_many(value))
    except (ValueError, TypeError):
        items = ()
    if not items or any(item.amount < 1 for item in items):
        raise ConfigError(
            f"{name} must be a rate limit such as 600/minute or 10/second;600/minute "
            f"(got {value!r}; WAITPOINT_RATE_LIMITS=off turns the limits off)"
        )
    return items


def env_rate_limit(environ: dict, name: str, default: str) -> str:
    raw = environ.get(name)
    value = default if raw is None or raw.strip() == "" else raw.strip()
    parse_rate_limit(name, value)
    return value


# Generous: normal use never meets them (README: Rate limits).
RATE_LIMIT_DEFAULTS = {
    "WAITPOINT_RATE_LIMIT_API_KEY": "3000/minute",  # requests per API key
    "WAITPOINT_RATE_LIMIT_API_KEY_FAILURES": "60/minute",  # 401s per client address
    "WAITPOINT_RATE_LIMIT_CALLBACK": "3000/minute",  # callback URL requests per address
    "WAITPOINT_RATE_LIMIT_CALLBACK_FAILURES": "60/minute",  # invalid callback URLs per address
}


def env_public_url(environ: dict, name: str) -> str | None:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an absolute http(s) URL (got {raw!r})")
    if parts.query or parts.fragment:
        raise ConfigError(f"{name} must not have a query or fragment (got {raw!r})")
    return raw.strip().rstrip("/")


def env_database_url(environ: dict, name: str, default: str) -> str:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    url = raw.strip()
    scheme = url.split(":", 1)[0]
    # Accept the short forms operators paste from their provider, but always
    # drive PostgreSQL through psycopg 3.
    if scheme in ("postgres", "postgresql"):
        url = "postgresql+psycopg" + url[len(scheme) :]
    elif scheme not in ("sqlite", "postgresql+psycopg"):
        raise ConfigError(
            f"{name} must be a sqlite:/// or postgresql+psycopg:// URL (got scheme {scheme!r})"
        )
    return url


# gunicorn threads per worker, and how many of them serve ordinary requests when the
# rest hold long polls: the default number of waits is what remains.
DEFAULT_THREADS = 640
RESERVED_THREADS = 32
_SPARE_THREADS = 8


def threads_per_worker(environ) -> int:
    return env_int(environ, "WAITPOINT_THREADS", DEFAULT_THREADS, minimum=1)


def max_waiters(environ) -> int:
    """Long polls one process holds: by default the threads less a reserve (640 -> 600)."""
    default = max(1, threads_per_worker(environ) - RESERVED_THREADS - _SPARE_THREADS)
    return env_int(environ, "WAITPOINT_MAX_WAITERS", default, minimum=1)


def log_format(environ) -> str:
    """``text`` (the default) or ``json``: one JSON line per request and per log record."""
    return env_choice(environ, "WAITPOINT_LOG_FORMAT", "text", ("text", "json"))


def client_timeout(environ) -> float:
    """Seconds a client has to send a request's headers and body (``waitpoint serve``)."""
    return env_float(environ, "WAITPOINT_CLIENT_TIMEOUT", 30.0, minimum=0.5)


def env_duration(environ: dict, name: str, default: str) -> float:
    """A duration such as ``5d`` or ``12h`` (the API's grammar), in seconds."""
    from .domain.timeutil import parse_duration

    raw = environ.get(name)
    value = default if raw is None or raw.strip() == "" else raw.strip()
    try:
        return parse_duration(value).total_seconds()
    except ValueError as exc:
        raise ConfigError(f"{name} {exc} (got {raw!r})") from None


def env_allow_private(environ: dict, name: str) -> bool | tuple[str, ...]:
    """Webhook destinations on private addresses: ``off`` (default), ``on``, or a comma
    list of networks (``10.0.0.0/8``, ``127.0.0.1``) and host names allowed."""
    import ipaddress
    import re

    raw = environ.get(name)
    if raw is None or raw.strip() == "" or raw.strip().lower() in _FALSE:
        return False
    if raw.strip().lower() in _TRUE:
        return True
    entries = []
    for entry in (part.strip().lower() for part in raw.split(",")):
        try:
            entries.append(str(ipaddress.ip_network(entry.strip("[]"), strict=False)))
            continue
        except ValueError:
            pass
        if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?", entry):
            raise ConfigError(
                f"{name} must be on, off, or a comma list of networks (10.0.0.0/8), "
                f"addresses and host names (got {entry!r} in {raw!r})"
            )
        entries.append(entry)
    return tuple(entries)


@dataclass(frozen=True)
class SmtpSettings:
    """Where mail goes: ``smtp://`` (STARTTLS when the server offers it, and required
    before a password is sent) or ``smtps://`` (TLS from the start)."""

    host: str
    port: int
    tls: bool  # smtps: TLS from the first byte
    username: str | None
    password: str | None

    def __repr__(self) -> str:  # never the password, in a log or a traceback
        user = f"{self.username}@" if self.username else ""
        return f"SmtpSettings({'smtps' if self.tls else 'smtp'}://{user}{self.host}:{self.port})"


def env_smtp_url(environ: dict, name: str) -> SmtpSettings | None:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError(
            f"{name} must be smtp://[user:password@]host[:port] or smtps://... (got scheme "
            f"{parts.scheme!r})"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{name} must not have a path, query or fragment")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 587)
    except ValueError:
        raise ConfigError(f"{name} has a port that is not a number from 1 to 65535") from None
    return SmtpSettings(
        host=parts.hostname,
        port=port,
        tls=parts.scheme == "smtps",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def env_mail_from(environ: dict, name: str, default: str) -> str:
    """A From header: ``Waitpoint <approvals@example.com>`` or an address alone."""
    from email.headerregistry import Address
    from email.utils import parseaddr

    raw = environ.get(name)
    value = default if raw is None or raw.strip() == "" else raw.strip()
    display, address = parseaddr(value)
    if "@" not in address or "\n" in value or "\r" in value:
        raise ConfigError(f"{name} must be an address such as Waitpoint <approvals@example.com>")
    try:
        return str(Address(display_name=display, addr_spec=address))
    except (ValueError, IndexError):
        raise ConfigError(f"{name} is not a valid address (got {raw!r})") from None


DEFAULT_PASSWORD_HASH = "scrypt"  # werkzeug's default


def env_password_hash(environ: dict, name: str, default: str) -> str:
    """A werkzeug password hash method: ``scrypt[:n:r:p]`` or ``pbkdf2[:digest[:iterations]]``."""
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    method = raw.strip()
    try:  # werkzeug is the judge of its own methods: hash once, as a login would
        generate_password_hash("", method)
    except ValueError:
        raise ConfigError(
            f"{name} must be a werkzeug password hash method such as scrypt or "
            f"pbkdf2:sha256:600000 (got {raw!r})"
        ) from None
    return method


def _development_secret(instance_path: Path) -> str:
    """A per-installation secret kept in ``instance/``, created on first run."""
    path = instance_path / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


def from_environment(instance_path: Path, environ: dict | None = None) -> dict:
    """Build the configuration mapping from ``environ`` (default: ``os.environ``)."""
    environ = os.environ if environ is None else environ
    env_name = environ.get("WAITPOINT_ENV", "development").strip().lower()
    if env_name not in ("development", "production"):
        raise ConfigError(f"WAITPOINT_ENV must be development or production (got {env_name!r})")

    secret = environ.get("SECRET_KEY", "").strip()
    if not secret:
        if env_name == "production":
            raise ConfigError("SECRET_KEY must be set when WAITPOINT_ENV=production")
        secret = _development_secret(instance_path)
    elif len(secret) < 16:
        raise ConfigError("SECRET_KEY must be at least 16 characters long")

    public_url = env_public_url(environ, "WAITPOINT_PUBLIC_URL")
    smtp = env_smtp_url(environ, "WAITPOINT_SMTP_URL")
    return {
        "WAITPOINT_ENV": env_name,
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": env_database_url(
            environ, "DATABASE_URL", f"sqlite:///{instance_path / 'waitpoint.db'}"
        ),
        "WAITPOINT_PUBLIC_URL": public_url,
        "WAITPOINT_SCHEDULER": env_bool(environ, "WAITPOINT_SCHEDULER", True),
        "WAITPOINT_SWEEP_INTERVAL": env_float(
            environ, "WAITPOINT_SWEEP_INTERVAL", 0.5, minimum=0.05
        ),
        "WAITPOINT_SWEEP_BATCH": env_int(environ, "WAITPOINT_SWEEP_BATCH", 1000, minimum=1),
        # SQLite: how long a writer waits for its turn before the request gets a 503.
        "WAITPOINT_SQLITE_BUSY_TIMEOUT": env_float(
            environ, "WAITPOINT_SQLITE_BUSY_TIMEOUT", 10.0, minimum=0.05
        ),
        "WAITPOINT_CREATE_MAX_BYTES": env_int(
            environ, "WAITPOINT_CREATE_MAX_BYTES", 64 * 1024, minimum=1024
        ),
        "WAITPOINT_COMPLETE_MAX_BYTES": env_int(
            environ, "WAITPOINT_COMPLETE_MAX_BYTES", 1024 * 1024, minimum=1024
        ),
        # Reverse proxies in front of the app whose X-Forwarded-* headers are trusted.
        "WAITPOINT_TRUSTED_PROXIES": env_int(environ, "WAITPOINT_TRUSTED_PROXIES", 0),
        # Long-poll waiters one process holds at once; beyond it, waits answer at once.
        "WAITPOINT_MAX_WAITERS": max_waiters(environ),
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "pool_pre_ping": True,
            # A database error's message must not carry its statement's values into the
            # logs (outputs, key hashes).
            "hide_parameters": True,
            "pool_size": env_int(environ, "WAITPOINT_DB_POOL_SIZE", 10, minimum=1),
            "max_overflow": env_int(environ, "WAITPOINT_DB_POOL_OVERFLOW", 20, minimum=0),
        },
        "SESSION_COOKIE_SECURE": bool(public_url and public_url.startswith("https://")),
        # Observability: GET /metrics (optionally behind a bearer token), and the log format.
        "WAITPOINT_METRICS": env_bool(environ, "WAITPOINT_METRICS", True),
        "WAITPOINT_METRICS_TOKEN": env_secret(environ, "WAITPOINT_METRICS_TOKEN"),
        "WAITPOINT_LOG_FORMAT": log_format(environ),
        # How operators' passwords are hashed (tests choose a cheap method).
        "WAITPOINT_PASSWORD_HASH": env_password_hash(
            environ, "WAITPOINT_PASSWORD_HASH", DEFAULT_PASSWORD_HASH
        ),
        # Rate limits: on by default, each configurable (README: Rate limits).
        "WAITPOINT_RATE_LIMITS": env_bool(environ, "WAITPOINT_RATE_LIMITS", True),
        # Webhooks (README: Webhooks): sent by each process with a scheduler unless off.
        "WAITPOINT_WEBHOOKS": env_bool(environ, "WAITPOINT_WEBHOOKS", True),
        "WAITPOINT_WEBHOOK_INTERVAL": env_float(
            environ, "WAITPOINT_WEBHOOK_INTERVAL", 0.5, minimum=0.05
        ),
        "WAITPOINT_WEBHOOK_BATCH": env_int(environ, "WAITPOINT_WEBHOOK_BATCH", 50, minimum=1),
        "WAITPOINT_WEBHOOK_TIMEOUT": env_float(
            environ, "WAITPOINT_WEBHOOK_TIMEOUT", 10.0, minimum=0.1
        ),
        "WAITPOINT_WEBHOOK_DISABLE_AFTER": env_duration(
            environ, "WAITPOINT_WEBHOOK_DISABLE_AFTER", "5d"
        ),
        "WAITPOINT_WEBHOOK_ALLOW_PRIVATE": env_allow_private(
            environ, "WAITPOINT_WEBHOOK_ALLOW_PRIVATE"
        ),
        # Mail to named approvers (README: Approvers and email).
        "WAITPOINT_SMTP_URL": smtp,
        "WAITPOINT_MAIL_FROM": env_mail_from(
            environ, "WAITPOINT_MAIL_FROM", "Waitpoint <waitpoint@localhost>"
        ),
        # No SMTP: mail goes to the dashboard's Mail page. On by default in development
        # only; in production, tokens with approvers need SMTP unless this is turned on.
        "WAITPOINT_LOCAL_MAILBOX": env_bool(
            environ, "WAITPOINT_LOCAL_MAILBOX", smtp is None and env_name == "development"
        ),
        "WAITPOINT_MAIL_INTERVAL": env_float(environ, "WAITPOINT_MAIL_INTERVAL", 1.0, minimum=0.05),
        "WAITPOINT_MAIL_BATCH": env_int(environ, "WAITPOINT_MAIL_BATCH", 100, minimum=1),
        "WAITPOINT_SMTP_TIMEOUT": env_float(environ, "WAITPOINT_SMTP_TIMEOUT", 20.0, minimum=0.1),
        **{
            name: env_rate_limit(environ, name, default)
            for name, default in RATE_LIMIT_DEFAULTS.items()
        },
    }
