"""Strict JSON in, storable text out.

Python's ``json`` accepts more than JSON and more than a database can store: NaN and
Infinity, numbers that overflow to infinity, strings with lone surrogates (not
UTF-8), nesting deep enough to exhaust the stack. These helpers refuse all of that
with a ``ValueError`` saying why, so that callers answer 400 instead of failing
later; and ``check_text`` refuses NUL characters, which PostgreSQL text cannot hold.
"""

from __future__ import annotations

import json
import math

MAX_DEPTH = 100


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:30]} is out of range")
    return value


def _constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes | str):
    """Parse strict JSON; ``ValueError("is not valid JSON (why)")`` for anything that
    could not be stored and given back as JSON."""
    try:
        value = json.loads(raw, parse_float=_float, parse_constant=_constant)
        _check_value(value, 0)
    except json.JSONDecodeError:
        raise ValueError("is not valid JSON") from None
    except RecursionError:
        raise ValueError(f"is not valid JSON (nested deeper than {MAX_DEPTH} levels)") from None
    except UnicodeDecodeError:
        raise ValueError("is not valid JSON (not UTF-8)") from None
    except ValueError as exc:
        raise ValueError(f"is not valid JSON ({exc})") from None
    return value


def _check_value(value, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        _check_unicode(value)
    elif isinstance(value, list):
        for item in value:
            _check_value(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_unicode(key)
            _check_value(item, depth + 1)


def _check_unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains an unpaired surrogate, which is not valid Unicode") from None


def check_text(text: str) -> str:
    """A string for a text column: valid Unicode and no NUL characters."""
    _check_unicode(text)
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text
