"""API keys and callback-URL signatures.

API keys are random, prefixed (``wp_``), stored only as SHA-256 hashes and
compared in constant time. Callback URLs carry an HMAC of the token id keyed by a
secret derived from ``SECRET_KEY`` (never an API key), so they need no storage; an
approver's personal link, an HMAC of the token id and the approver's position under a
second derived key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

KEY_PREFIX = "wp_"
VISIBLE_CHARS = 11  # "wp_" and 8 random characters: enough to recognise, useless to guess


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def visible_prefix(key: str) -> str:
    return key[:VISIBLE_CHARS]


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@lru_cache(maxsize=4)
def _callback_key(secret_key: str) -> bytes:
    # A key of its own, so that a callback signature can never double as a session signature.
    return hmac.new(secret_key.encode(), b"waitpoint callback url v1", hashlib.sha256).digest()


def callback_signature(secret_key: str, token_id: str) -> str:
    return hmac.new(_callback_key(secret_key), token_id.encode(), hashlib.sha256).hexdigest()


def callback_signature_ok(secret_key: str, token_id: str, signature: str) -> bool:
    return same_digest(callback_signature(secret_key, token_id), signature)


@lru_cache(maxsize=4)
def _approver_key(secret_key: str) -> bytes:
    # Another key of its own: a personal link never doubles as a callback URL, nor back.
    return hmac.new(secret_key.encode(), b"waitpoint approver url v1", hashlib.sha256).digest()


def approver_signature(secret_key: str, token_id: str, position: int) -> str:
    message = f"{token_id}/{position}".encode()
    return hmac.new(_approver_key(secret_key), message, hashlib.sha256).hexdigest()


def approver_signature_ok(secret_key: str, token_id: str, position: int, signature: str) -> bool:
    return same_digest(approver_signature(secret_key, token_id, position), signature)


_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_ID_LENGTH = 25


def new_public_id() -> str:
    """25 lowercase letters and digits (about 129 bits), like trigger.dev's friendly ids:
    one uniform draw from the operating system's generator, written in base 36."""
    number = secrets.randbelow(len(_ID_ALPHABET) ** _ID_LENGTH)
    digits = []
    for _ in range(_ID_LENGTH):
        number, digit = divmod(number, len(_ID_ALPHABET))
        digits.append(_ID_ALPHABET[digit])
    return "".join(digits)
