"""API key authentication: ``Authorization: Bearer wp_...``."""

from __future__ import annotations

from functools import wraps

from flask import current_app, g, request
from sqlalchemy import bindparam, select

from ..domain.credentials import hash_api_key, same_digest
from ..extensions import db
from ..models import ApiKey
from ..web import ratelimit
from .errors import ApiError

KEY_CACHE = "waitpoint_keys"
_KEYS = ApiKey.__table__
# A Core statement on the table, built once: no ORM compilation on every request.
_LIVE_KEY = select(_KEYS.c.project_id, _KEYS.c.key_hash).where(
    _KEYS.c.key_hash == bindparam("digest"), _KEYS.c.revoked_at.is_(None)
)


def authenticate(header: str | None) -> int:
    """The project id of a valid, unrevoked key, or an ``ApiError(401)``.

    A valid key's request counts against its rate limit (``RateLimited`` past it).
    """
    if not header:
        raise ApiError(401, "Authorization: header is missing (use 'Bearer <API key>')")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "Authorization: must be 'Bearer <API key>'")
    digest = hash_api_key(key.strip())
    project_id = current_app.extensions[KEY_CACHE].project_of(digest, _look_up)
    if project_id is None:
        raise ApiError(401, "Authorization: the API key is not valid or has been revoked")
    ratelimit.count_api_key(digest)
    return project_id


def _look_up(digest: str) -> int | None:
    row = db.session.execute(_LIVE_KEY, {"digest": digest}).one_or_none()
    if row is None or not same_digest(row.key_hash, digest):
        return None
    return row.project_id


def init_app(app) -> None:
    from .key_cache import for_engine

    with app.app_context():
        app.extensions[KEY_CACHE] = for_engine(db.engine)


def require_api_key(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        g.project_id = authenticate(request.headers.get("Authorization"))
        return view(*args, **kwargs)

    return wrapper
