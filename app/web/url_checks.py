"""What a URL must satisfy before any view sees it.

Values in a URL go to the database: an id past the column's range or a NUL in a
text is refused by PostgreSQL with an error (a 500), and SQLite would compare them
silently. So ids are range-checked by their converter (out of range: 404, like any
id that does not exist) and NUL is refused in every query parameter (400).
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

# The range of an INTEGER primary key on both engines.
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """``<id:name>``: a database id, 1..2**31-1; anything else matches no route."""

    def __init__(self, url_map, min: int = 1, max: int = MAX_ID):  # noqa: A002
        super().__init__(url_map, min=min, max=max)


def refuse_nul() -> None:
    """Before every request: NUL in a query parameter is a 400 naming it. (Ids in the path
    are checked by their views' own rules, which never pass a NUL on.)"""
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            raise BadRequest(f"{name.replace(chr(0), '')}: must not contain NUL characters")


def register(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_nul)
