"""Template filters shared by the pages."""

from __future__ import annotations

import json
from datetime import datetime

from flask import Flask
from markupsafe import Markup

from ..domain import limits
from ..domain.timeutil import as_utc, isoformat, utcnow
from ..models import COMPLETED, TIMED_OUT, WAITING


def when(value: datetime) -> Markup:
    """A ``<time>`` element: UTC in the text, ISO in ``datetime``. One rule for the whole
    app (pages, dashboard, emails): times are UTC and say so, with or without JavaScript."""
    return Markup('<time datetime="{}">{}</time>').format(isoformat(value), when_text(value))


def when_text(value: datetime) -> str:
    """``29 Nov 2026, 14:30 UTC``: a time as pages show it, in plain text."""
    return as_utc(value).strftime("%-d %b %Y, %H:%M UTC")


def remaining(deadline: datetime, now: datetime | None = None) -> str:
    seconds = int((as_utc(deadline) - (now or utcnow())).total_seconds())
    if seconds <= 0:
        return "due now"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"in {days} d {hours} h"
    if hours:
        return f"in {hours} h {minutes} min"
    if minutes:
        return f"in {minutes} min {seconds} s"
    return f"in {seconds} s"


def ago(moment: datetime, now: datetime | None = None) -> str:
    seconds = int(((now or utcnow()) - as_utc(moment)).total_seconds())
    if seconds < 60:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"  # pragma: no cover


def detail(value) -> str:
    """A value of ``details`` as a person reads it: Yes/No, and a whole number without the
    ``.0`` that JSON parsing gave it (``240``, not ``240.0``)."""
    if value is True:
        return "Yes"
    if value is False:
        return "No"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


# How the pages name the statuses (the API uses the statuses themselves).
STATUS_LABELS = {WAITING: "Waiting", COMPLETED: "Completed", TIMED_OUT: "Timed out"}


def status_label(status: str) -> str:
    return STATUS_LABELS[status]


def register(app: Flask) -> None:
    app.add_template_filter(status_label)
    app.add_template_global(limits, "limits")
    app.add_template_filter(when)
    app.add_template_filter(when_text)
    app.add_template_filter(remaining)
    app.add_template_filter(ago)
    app.add_template_filter(detail)
    app.add_template_filter(isoformat, "iso")
    app.add_template_filter(json.loads, "fromjson")
