"""UTC time: one clock, one wire format, one duration grammar.

Every timestamp in the application is a timezone-aware ``datetime`` in UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

MAX_DURATION_CHARS = 100
_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "hr": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:\d+(?:w|d|hr|h|m|s))+")
_DATE_PREFIX = re.compile(r"\d{4}-\d{2}-\d{2}")
_GROUP = re.compile(r"(\d+)(w|d|hr|h|m|s)")
# Far enough for any approval, near enough to stay inside datetime's range.
MAX_DURATION = timedelta(days=365 * 100)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Attach UTC to a naive value read back from a database that drops zones (SQLite)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def isoformat(value: datetime) -> str:
    """``2026-11-28T15:04:05.123Z``: the wire format of every time (docs/api.md)."""
    return as_utc(value).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_duration(text: str) -> timedelta:
    """Parse ``30s``, ``1h30m``, ``4w``... Raises ``ValueError`` with the reason."""
    if len(text) > MAX_DURATION_CHARS:
        raise ValueError(f"must be at most {MAX_DURATION_CHARS} characters")
    if not _DURATION.fullmatch(text):
        raise ValueError(
            "must be a duration such as 30s, 10m, 2h, 3d, 4w or 1h30m (units w d h hr m s)"
        )
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _GROUP.findall(text))
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError("must be at most 100 years")
    return timedelta(seconds=seconds)


def parse_datetime(text: str) -> datetime:
    """Parse an ISO 8601 date-time that names its offset (``Z`` or ``+hh:mm``)."""
    if len(text) > MAX_DURATION_CHARS:
        raise ValueError(f"must be at most {MAX_DURATION_CHARS} characters")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time such as 2026-11-28T15:04:05Z") from None
    if value.tzinfo is None:
        raise ValueError("must include a UTC offset (Z or +hh:mm)")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


def parse_deadline(text: str, now: datetime) -> datetime:
    """A duration from ``now`` or an absolute date-time; either way in the future."""
    moment = parse_datetime(text) if _DATE_PREFIX.match(text) else now + parse_duration(text)
    if moment <= now:
        raise ValueError("must be in the future")
    return moment


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date-time or epoch milliseconds (what the TypeScript SDK sends for a Date)."""
    if text.isdigit() and len(text) <= 15:
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    return parse_datetime(text)
