"""How a token reads: ``StoredToken``, the one read model of a token with its completion.

Every reader (the API, the approval pages, the dashboard, the CLI, the lifecycle's
re-reads) gets tokens from here, as frozen ``StoredToken`` values built from rows of the
``tokens`` table (SQLAlchemy Core: no ORM objects on the hot paths). A token's
completion record is read only for tokens that are no longer waiting, and for a page of
tokens in one query, so a waiting token costs one statement and a page two at most.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, bindparam, select

from ..extensions import db
from ..models import COMPLETED, TIMED_OUT, WAITING, Completion, Token

TOKENS = Token.__table__
COMPLETIONS = Completion.__table__
ID_PREFIX = "waitpoint_"
_PUBLIC_ID = re.compile(r"[a-z0-9]{1,32}", re.ASCII)


@dataclass(frozen=True, slots=True)
class StoredCompletion:
    """Who or what completed a token: written by the one request that decided it."""

    source: str  # api | callback | page | dashboard | cancel
    approved: bool | None  # an approve/reject decision; None for any other output
    actor: str | None  # the approver's name, the operator's email
    comment: str | None
    at: datetime
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class StoredToken:
    pk: int
    public_id: str  # without the prefix; ``id`` is what the wire and the pages show
    project_id: int
    status: str
    created_at: datetime
    timeout_at: datetime | None
    finished_at: datetime | None
    idempotency_key: str | None
    idempotency_key_expires_at: datetime | None
    tags_json: str
    output: str | None  # JSON text, exactly as given back on the wire
    title: str | None
    description: str | None
    details_json: str | None
    required_approvals: int | None  # named approvers (``domain.approvers``): the quorum
    requested_by: str | None
    form_json: str | None  # a response form (``domain.response_form``)
    approve_label: str | None
    reject_label: str | None
    timeout_output: str | None  # JSON text: the output of a time-out, if given
    completion: StoredCompletion | None = None

    @property
    def id(self) -> str:
        return ID_PREFIX + self.public_id

    @property
    def tags(self) -> list[str]:
        return json.loads(self.tags_json)

    @property
    def details(self) -> dict | None:
        return json.loads(self.details_json) if self.details_json is not None else None

    @property
    def waiting(self) -> bool:
        return self.status == WAITING

    @property
    def approved(self) -> bool | None:
        """True or False for an approve/reject decision, else None."""
        return self.completion.approved if self.completion is not None else None

    @property
    def cancelled(self) -> bool:
        """Withdrawn through the cancel route (COMPLETED, with an error output)."""
        return self.completion is not None and self.completion.source == "cancel"

    @property
    def closed_at(self) -> datetime | None:
        """When it stopped waiting: the deadline of a timed-out token, else its completion."""
        if self.status == TIMED_OUT:
            return self.timeout_at
        return self.finished_at if self.status == COMPLETED else None

    def overdue(self, now: datetime) -> bool:
        """Still stored as waiting, though its deadline has passed (not swept yet)."""
        return self.waiting and self.timeout_at is not None and self.timeout_at <= now


_FIELDS = [name for name in StoredToken.__slots__ if name != "completion"]


def from_rows(rows: Sequence[Row]) -> list[StoredToken]:
    """Tokens from rows of ``tokens``, with the completions of the decided ones (one query)."""
    decided = [row.pk for row in rows if row.status != WAITING]
    completions = _completions(decided) if decided else {}
    return [_token(row, completions.get(row.pk)) for row in rows]


def from_row(row: Row) -> StoredToken:
    return from_rows([row])[0]


def _token(row: Row, completion: StoredCompletion | None) -> StoredToken:
    mapping = row._mapping
    return StoredToken(*(mapping[name] for name in _FIELDS), completion=completion)


_COMPLETIONS_OF = select(COMPLETIONS).where(
    COMPLETIONS.c.token_pk.in_(bindparam("pks", expanding=True))
)
# One token (a retrieve): an expanding IN is rendered into the SQL again at each execution.
_COMPLETION_OF = select(COMPLETIONS).where(COMPLETIONS.c.token_pk == bindparam("pk"))


def _completions(token_pks: Sequence[int]) -> dict[int, StoredCompletion]:
    if len(token_pks) == 1:
        rows = db.session.execute(_COMPLETION_OF, {"pk": token_pks[0]})
    else:
        rows = db.session.execute(_COMPLETIONS_OF, {"pks": list(token_pks)})
    return {
        row.token_pk: StoredCompletion(
            source=row.source,
            approved=row.approved,
            actor=row.actor,
            comment=row.comment,
            at=row.created_at,
            ip=row.ip,
            user_agent=row.user_agent,
        )
        for row in rows
    }


def stored_id(public_id: str) -> str | None:
    """``waitpoint_<id>`` -> ``<id>``; None when it cannot be one of ours."""
    suffix = public_id.removeprefix(ID_PREFIX)
    if suffix == public_id or not _PUBLIC_ID.fullmatch(suffix):
        return None
    return suffix


_BY_ID = select(TOKENS).where(TOKENS.c.public_id == bindparam("public_id"))
_BY_PROJECT_AND_ID = _BY_ID.where(TOKENS.c.project_id == bindparam("project_id"))
_BY_PK = select(TOKENS).where(TOKENS.c.pk == bindparam("pk"))
_BY_PKS = select(TOKENS).where(TOKENS.c.pk.in_(bindparam("pks", expanding=True)))


def find_token(public_id: str, project_id: int | None = None) -> StoredToken | None:
    """The token with this public id (``waitpoint_...``), within a project if one is given."""
    suffix = stored_id(public_id)
    if suffix is None:
        return None  # not one of ours: no need to ask the database
    if project_id is None:
        row = db.session.execute(_BY_ID, {"public_id": suffix}).one_or_none()
    else:
        row = db.session.execute(
            _BY_PROJECT_AND_ID, {"public_id": suffix, "project_id": project_id}
        ).one_or_none()
    return from_row(row) if row is not None else None


def token_by_pk(token_pk: int) -> StoredToken:
    """A token known to exist, read again (say, after a race)."""
    return from_row(db.session.execute(_BY_PK, {"pk": token_pk}).one())


def tokens_by_pks(token_pks: Sequence[int]) -> dict[int, StoredToken]:
    rows = db.session.execute(_BY_PKS, {"pks": list(token_pks)}).all()
    return {token.pk: token for token in from_rows(rows)}
