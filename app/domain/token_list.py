"""Reading tokens for lists: filters, effective status and cursor pagination.

Newest first by the surrogate key ``pk``. A cursor is the ``pk`` of the last (or
first) row of a page, encoded so that clients treat it as opaque. Tag filters
are answered from ``token_tags`` with one index range scan per tag (status and
deadline are copied there), merged, and only then joined to ``tokens``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Integer, and_, bindparam, or_, select, union

from ..extensions import db
from ..models import COMPLETED, TIMED_OUT, WAITING, Token, TokenTag
from . import approvers, stored
from .stored import TOKENS, StoredToken

_CURSOR = re.compile(r"t[0-9]{1,19}", re.ASCII)


class BadCursor(ValueError):
    pass


def encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(f"t{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("is not a valid cursor") from None
    if not _CURSOR.fullmatch(raw) or int(raw[1:]) > 2**63 - 1:
        raise BadCursor("is not a valid cursor")
    return int(raw[1:])


@dataclass(frozen=True)
class TokenFilter:
    statuses: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    idempotency_key_hash: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    approver: str | None = None  # waiting on this named approver (an email)


@dataclass
class Page:
    tokens: list[StoredToken] = field(default_factory=list)
    next_cursor: str | None = None
    previous_cursor: str | None = None


def status_condition(columns, statuses: tuple[str, ...], now: datetime):
    """Effective-status filter on a table with ``status`` and ``timeout_at`` columns."""
    overdue = and_(columns.status == WAITING, columns.timeout_at <= now)
    parts = []
    for status in statuses:
        if status == WAITING:
            parts.append(
                and_(
                    columns.status == WAITING,
                    or_(columns.timeout_at.is_(None), columns.timeout_at > now),
                )
            )
        elif status == TIMED_OUT:
            parts.append(or_(columns.status == TIMED_OUT, overdue))
        elif status == COMPLETED:
            parts.append(columns.status == COMPLETED)
    return or_(*parts)


def list_tokens(
    project_id: int,
    flt: TokenFilter,
    now: datetime,
    size: int,
    after: int | None = None,
    before: int | None = None,
) -> Page:
    backwards = before is not None
    order = Token.pk.asc() if backwards else Token.pk.desc()
    if flt.tags and not _has_row_filters(flt):
        # The hot path (status + tags): the newest size+1 pks per tag, from the index.
        window = "before" if backwards else ("after" if after is not None else None)
        query = select(TOKENS).where(
            Token.pk.in_(_tag_candidates(len(flt.tags), flt.statuses, window))
        )
        params = {
            "project_id": project_id,
            "now": now,
            "limit": size + 1,
            "cursor": before if backwards else after,
            **{f"tag_{i}": tag for i, tag in enumerate(flt.tags)},
        }
        return fetch_page(query.order_by(order), size, after, before, params)
    query = _filtered(project_id, flt, now, after, before)
    return fetch_page(query.order_by(order), size, after, before)


def fetch_page(
    ordered_query, size: int, after: int | None, before: int | None, params: dict | None = None
) -> Page:
    """Run a query ordered away from the cursor (pk desc, or asc going back) as one page."""
    backwards = before is not None
    rows = db.session.execute(ordered_query.limit(size + 1), params).all()
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    page = Page(tokens=stored.from_rows(rows))
    if rows:
        # Going back, older rows exist (the cursor's own); going forward, newer ones do.
        if more or backwards:
            page.next_cursor = encode_cursor(rows[-1].pk)
        if (more and backwards) or after is not None:
            page.previous_cursor = encode_cursor(rows[0].pk)
    return page


def _has_row_filters(flt: TokenFilter) -> bool:
    return (
        flt.idempotency_key_hash is not None
        or flt.created_from is not None
        or flt.created_to is not None
        or flt.approver is not None
    )


def _window(pk_column, after: int | None, before: int | None) -> list:
    if after is not None:
        return [pk_column < after]
    if before is not None:
        return [pk_column > before]
    return []


def _filtered(project_id, flt, now, after, before):
    query = select(TOKENS).where(Token.project_id == project_id, *_window(Token.pk, after, before))
    if flt.tags:
        query = query.where(
            Token.pk.in_(
                select(TokenTag.token_pk).where(
                    TokenTag.project_id == project_id, TokenTag.tag.in_(flt.tags)
                )
            )
        )
    if flt.statuses:
        query = query.where(status_condition(Token, flt.statuses, now))
    if flt.idempotency_key_hash is not None:
        query = query.where(Token.idempotency_key_hash == flt.idempotency_key_hash)
    if flt.created_from is not None:
        query = query.where(Token.created_at >= flt.created_from)
    if flt.created_to is not None:
        query = query.where(Token.created_at <= flt.created_to)
    if flt.approver is not None:
        query = query.where(approvers.waiting_on(project_id, flt.approver))
    return query


@lru_cache(maxsize=256)
def _tag_candidates(tag_count: int, statuses: tuple[str, ...], window: str | None):
    """The first ``:limit`` token pks of each tag (``:tag_0``...) inside the window, merged.

    Built once per shape (how many tags, which statuses, which cursor direction); the
    values come as parameters: ``project_id``, ``now``, ``limit``, ``cursor``, ``tag_<i>``.
    """
    pk = TokenTag.token_pk
    order = pk.asc() if window == "before" else pk.desc()
    cursor = bindparam("cursor")
    window_conditions = _window(
        pk, cursor if window == "after" else None, cursor if window == "before" else None
    )
    per_tag = []
    for i in range(tag_count):
        query = select(pk).where(
            TokenTag.project_id == bindparam("project_id"),
            TokenTag.tag == bindparam(f"tag_{i}"),
            *window_conditions,
        )
        if statuses:
            query = query.where(status_condition(TokenTag, statuses, bindparam("now")))
        limited = query.order_by(order).limit(bindparam("limit", type_=Integer))
        per_tag.append(limited.subquery().select())
    merged = union(*per_tag) if len(per_tag) > 1 else per_tag[0]
    return merged.scalar_subquery()
