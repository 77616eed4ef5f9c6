"""The board's filters: read from the query string, written back into its links.

One encoding for every board URL: the server's links, the filter form as a browser
submits it, and the same form sent by dashboard.js all write a query as an HTML form
does (``application/x-www-form-urlencoded``: ``tag=customer%3A42``, a space as ``+``),
in the form's order, without empty parameters, and with the dates only for "Between
dates". A shared link and the form's URL for the same view are the same text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from urllib.parse import quote_plus, urlencode

from werkzeug.datastructures import MultiDict

from ..domain import token_list
from ..domain.jsontext import check_text
from ..domain.limits import TAG_MAX, TAGS_MAX
from ..domain.timeutil import as_utc, parse_duration
from ..models import STATUSES
from .board import BoardFilter
from .forms import ApproverFilterForm

PERIODS = {"1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}
CUSTOM = "custom"  # "Between dates…": the only choice that reads ``from`` and ``to``
DATES = ("from", "to")
MAX_TAGS = TAGS_MAX


def query_string(args: Mapping | Iterable[tuple[str, str]]) -> str:
    """``args`` (name to a value or a list of values, or pairs) as a browser encodes a
    form, empty values left out. Python keeps ``~`` as it is and a form encodes it:
    ``%7E`` makes them agree (an unencoded ``~`` can only be one of ours)."""
    pairs = args.items() if isinstance(args, Mapping) else args
    flat = [
        (name, str(v))
        for name, value in pairs
        for v in (value if isinstance(value, list | tuple) else [value])
        if v not in ("", None)
    ]
    return urlencode(flat, quote_via=quote_plus, safe="*").replace("~", "%7E")


def without_empty(args: MultiDict) -> str | None:
    """The query of ``args`` without its empty parameters (and the dates unless "Between
    dates" is chosen), or None if it has none to drop: what a form sent without
    JavaScript is redirected to."""
    custom = args.get("created") == CUSTOM
    items = list(args.items(multi=True))
    kept = [(k, v) for k, v in items if v.strip() and (custom or k not in DATES)]
    return None if len(kept) == len(items) else query_string(kept)


class Filters:
    """The board's filter state, read from (and written back to) the query string."""

    def __init__(self, args: MultiDict, now: datetime):
        self.status = args.get("status", "WAITING")
        if self.status not in (*STATUSES, "ALL"):
            self.status = "WAITING"
        self.errors: list[str] = []
        tags = [t.strip() for t in args.getlist("tag") if t.strip()]
        self.tags = tuple(dict.fromkeys(t for t in tags if self._usable(t, TAG_MAX, "Tag")))
        if len(self.tags) > MAX_TAGS:
            self.errors.append(f"At most {MAX_TAGS} tags at once; using the first {MAX_TAGS}.")
            self.tags = self.tags[:MAX_TAGS]
        q = args.get("q", "").strip()
        self.q = q if self._usable(q, 2048, "Search") else ""
        self.created = args.get("created", "")
        self.from_date = args.get("from", "")
        self.to_date = args.get("to", "")
        self.created_from, self.created_to = self._created_range(now)
        self.approver_form = ApproverFilterForm(args)
        valid = self.approver_form.validate()  # its error shows next to its field
        self.approver = (self.approver_form.approver.data or None) if valid else None
        self.after = self._cursor(args.get("after"))
        self.before = self._cursor(args.get("before")) if self.after is None else None
        self._tag_links: dict[tuple[str, str], str] = {}

    @property
    def active(self) -> int:
        """How many filters narrow the board (the status tab aside)."""
        return len(self.tags) + sum(map(bool, (self.q, self.created, self.approver)))

    def _usable(self, text: str, limit: int, label: str) -> bool:
        try:
            check_text(text)
        except ValueError as exc:
            self.errors.append(f"{label}: {exc}; ignored.")
            return False
        if len(text) > limit:
            self.errors.append(f"{label}: longer than {limit} characters; ignored.")
            return False
        return True

    def _created_range(self, now: datetime):
        start = end = None
        if self.created in PERIODS:
            start = now - parse_duration(self.created)
        elif self.created == CUSTOM:
            start, end = self._date(self.from_date, "From"), self._date(self.to_date, "To")
            if end is not None and end < datetime.max.replace(tzinfo=end.tzinfo) - timedelta(2):
                end += timedelta(days=1)  # the whole "to" day
        else:
            self.created = ""
        return start, end

    def _date(self, text: str, label: str) -> datetime | None:
        if not text:
            return None
        try:
            return as_utc(datetime.strptime(text, "%Y-%m-%d"))
        except (ValueError, OverflowError):
            self.errors.append(f"{label}: use a date like 2026-11-28.")
            return None

    def _cursor(self, value: str | None) -> int | None:
        if not value:
            return None
        try:
            return token_list.decode_cursor(value)
        except token_list.BadCursor:
            self.errors.append("That page link is not valid any more; showing the newest.")
            return None

    def board_filter(self, status: str | None = "current") -> BoardFilter:
        status = self.status if status == "current" else status
        return BoardFilter(
            status=None if status == "ALL" else status,
            tags=self.tags,
            search=self.q or None,
            created_from=self.created_from,
            created_to=self.created_to,
            approver=self.approver,
        )

    def args(self, **changes) -> dict:
        """Query arguments for a link: these filters with ``changes`` applied, in the
        filter form's order."""
        custom = self.created == CUSTOM
        args = {
            "status": self.status,
            "tag": list(self.tags),
            "q": self.q,
            "approver": self.approver,
            "created": self.created,
            "from": self.from_date if custom else "",
            "to": self.to_date if custom else "",
        }
        args.update(changes)
        return {k: v for k, v in args.items() if v not in ("", None, [])}

    def url(self, board_url: str, **changes) -> str:
        """The board at ``board_url`` with these filters and ``changes``."""
        query = query_string(self.args(**changes))
        return f"{board_url}?{query}" if query else board_url

    def tag_link(self, board_url: str, tag: str) -> str:
        """The board narrowed by one more tag: on every row, so built once per tag."""
        key = (board_url, tag)
        if key not in self._tag_links:
            self._tag_links[key] = self.url(board_url, tag=list(dict.fromkeys((*self.tags, tag))))
        return self._tag_links[key]
