"""Reading a request: its JSON body, and the validating model it must fit."""

from __future__ import annotations

from flask import request
from pydantic import BaseModel, ValidationError

from ..domain.jsontext import parse_json
from .errors import ApiError, validation_message


def parse_model(model: type[BaseModel], data) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(*validation_message(exc)) from None


def read_json_body(max_bytes: int, *, lenient: bool = False):
    """The request body as JSON; an empty body is ``{}``.

    With ``lenient`` (the callback URL), a body that is not JSON counts as ``{}``
    too; otherwise it is a 400.
    """
    request.max_content_length = max_bytes
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        return parse_json(raw)
    except ValueError as exc:
        if lenient:
            return {}
        raise ApiError(400, f"body: {exc}") from None


def read_json_object(max_bytes: int) -> dict:
    data = read_json_body(max_bytes)
    if not isinstance(data, dict):
        raise ApiError(400, "body: must be a JSON object")
    return data
