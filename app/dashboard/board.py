"""The dashboard's token list: every tag required, search, status counts.

Driven from ``token_tags`` when tags are given (one index range scan on the first
tag, ``EXISTS`` probes for the others), else from ``tokens`` by (project, status,
pk). Newest first by ``pk``; cursors as in the API. "Waiting on <email>" is the API's
condition (``approvers.waiting_on``: the approvers' index by project and email).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, func, literal, or_, select, union_all
from sqlalchemy.orm import aliased

from ..domain import approvers
from ..domain.lifecycle import idempotency_hash
from ..domain.stored import ID_PREFIX
from ..domain.token_list import Page, fetch_page, status_condition
from ..extensions import db
from ..models import COMPLETED, STATUSES, TIMED_OUT, WAITING, Token, TokenTag


@dataclass(frozen=True)
class BoardFilter:
    status: str | None = WAITING  # None: all
    tags: tuple[str, ...] = ()
    search: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    approver: str | None = None  # an email: tokens this named approver has not answered


def _scope(project_id: int, flt: BoardFilter):
    """(select-from clause builder, the table carrying status/timeout, the pk column)."""
    if not flt.tags:
        return Token, Token.pk, [Token.project_id == project_id], None
    first = aliased(TokenTag, name="first_tag")
    conditions = [first.project_id == project_id, first.tag == flt.tags[0]]
    for tag in flt.tags[1:]:
        other = aliased(TokenTag)
        conditions.append(exists().where(other.token_pk == first.token_pk, other.tag == tag))
    return first, first.token_pk, conditions, first


def _row_conditions(project_id: int, flt: BoardFilter) -> list:
    conditions = []
    if flt.search:
        text = flt.search.strip()
        suffix = text.removeprefix(ID_PREFIX).lower()
        by_key = Token.idempotency_key_hash == idempotency_hash(text)
        if suffix.isalnum() and len(suffix) >= 4:
            # An id or its start (the list shows short ids): a range on the unique index.
            by_id = and_(Token.public_id >= suffix, Token.public_id < suffix + "~")
            conditions.append(or_(by_id, by_key))
        else:
            conditions.append(by_key)
    if flt.created_from is not None:
        conditions.append(Token.created_at >= flt.created_from)
    if flt.created_to is not None:
        conditions.append(Token.created_at <= flt.created_to)
    if flt.approver is not None:
        conditions.append(approvers.waiting_on(project_id, flt.approver))
    return conditions


def _base(project_id: int, flt: BoardFilter):
    """``(build(*columns) -> select, status table, pk column)`` for one filter."""
    status_table, pk, conditions, driver = _scope(project_id, flt)

    row_conditions = _row_conditions(project_id, flt)

    def build(*columns, tokens: bool = True):
        """Select ``columns``; ``tokens=False`` when they and the filter need no token row."""
        query = select(*columns)
        if driver is not None:
            query = query.select_from(driver)
            if tokens or row_conditions:
                query = query.join(Token, Token.pk == driver.token_pk)
        return query.where(*conditions, *row_conditions)

    return build, status_table, pk


def board_page(
    project_id: int,
    flt: BoardFilter,
    now: datetime,
    size: int,
    after: int | None = None,
    before: int | None = None,
) -> Page:
    build, status_table, pk = _base(project_id, flt)
    query = build(Token.__table__)
    if flt.status is not None:
        query = query.where(status_condition(status_table, (flt.status,), now))
    if after is not None:
        query = query.where(pk < after)
    if before is not None:
        query = query.where(pk > before)
    return fetch_page(
        query.order_by(pk.asc() if before is not None else pk.desc()), size, after, before
    )


def status_counts(project_id: int, flt: BoardFilter, now: datetime) -> dict[str, int]:
    """Tokens per effective status under the filter (status itself aside): one query.

    Stored statuses are counted by group; the overdue ones (stored WAITING, deadline
    passed, not yet swept) are counted apart and moved from WAITING to TIMED_OUT. With a
    tag filter both parts read only the tag index.
    """
    build, status_table, _ = _base(project_id, flt)
    stored = build(status_table.status, func.count(), tokens=False).group_by(status_table.status)
    overdue = build(literal(_OVERDUE), func.count(), tokens=False).where(
        status_table.status == WAITING, status_table.timeout_at <= now
    )
    counts = dict.fromkeys(STATUSES, 0)
    for status, count in db.session.execute(union_all(stored, overdue)):
        if status == _OVERDUE:
            counts[WAITING] -= count
            counts[TIMED_OUT] += count
        else:
            counts[status] += count
    counts["ALL"] = counts[WAITING] + counts[COMPLETED] + counts[TIMED_OUT]
    return counts


_OVERDUE = "overdue"


def tag_suggestions(project_id: int, prefix: str, limit: int = 10) -> list[str]:
    """Tags of the project starting with ``prefix``: a range on the tag index."""
    query = select(TokenTag.tag).where(TokenTag.project_id == project_id)
    if prefix:
        query = query.where(TokenTag.tag >= prefix, TokenTag.tag < prefix + "\U0010ffff")
    return list(db.session.execute(query.distinct().order_by(TokenTag.tag).limit(limit)).scalars())
