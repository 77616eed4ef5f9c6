"""The OpenAPI 3.1 document, generated from the pydantic models in ``schemas.py``."""

from __future__ import annotations

from functools import cache

from flask import jsonify
from pydantic.json_schema import models_json_schema

from . import bp
from .schemas import (
    DURATION_DOC,
    CompleteTokenRequest,
    CompleteTokenResponse,
    CreateTokenRequest,
    CreateTokenResponse,
    ErrorResponse,
    HealthResponse,
    ListTokensQuery,
    TokenList,
    TokenRetrieveResponse,
)

REF = "#/components/schemas/{model}"


def _ref(model) -> dict:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(*codes: int) -> dict:
    reasons = {
        400: "Invalid input; the message names the field.",
        401: "Missing, malformed or revoked API key.",
        404: "No such token in this project (or a wrong callback signature).",
        413: "Request body too large.",
        414: "Request line longer than 8,190 bytes, the server's limit. Every parameter at "
        "its maxLength fits in ASCII; a non-ASCII character takes up to 12 bytes once "
        "percent-encoded, so filter on fewer long non-ASCII tags at a time.",
        422: "More than 10 tags.",
        429: "Too many requests: a rate limit (per API key, or per client address for "
        "refused keys and callback URLs); retry after the Retry-After header's seconds.",
        503: "The database is busy (a writer waited past the busy timeout); retry after "
        "the Retry-After header's seconds.",
    }
    return {str(code): _json(ErrorResponse, reasons[code]) for code in codes}


def _query_parameters() -> list[dict]:
    schema = ListTokensQuery.model_json_schema()
    params = []
    for name, prop in schema["properties"].items():
        params.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": prop.pop("description", ""),
                "schema": prop,
            }
        )
    return params


TOKEN_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^waitpoint_[a-z0-9]+$"},
}

HASH = {
    "name": "hash",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
}


@cache
def build_document() -> dict:
    _, schemas = models_json_schema(
        [
            (CreateTokenRequest, "validation"),
            (CreateTokenResponse, "serialization"),
            (TokenRetrieveResponse, "serialization"),
            (TokenList, "serialization"),
            (CompleteTokenRequest, "validation"),
            (CompleteTokenResponse, "serialization"),
            (ErrorResponse, "serialization"),
            (HealthResponse, "serialization"),
        ],
        ref_template=REF,
    )
    secured = [{"apiKey": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Waitpoint API",
            "version": "1.0.0",
            "description": "Human-in-the-loop waitpoint tokens, wire-compatible with "
            "trigger.dev's waitpoint-token API. Optional fields are omitted, never null. "
            "Times are ISO 8601 UTC with milliseconds and Z.",
        },
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "wp_... API key"}
            },
        },
        "paths": {
            "/api/v1/waitpoints/tokens": {
                "post": {
                    "operationId": "createToken",
                    "summary": "Create a waitpoint token",
                    "security": secured,
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": _ref(CreateTokenRequest)}},
                    },
                    "responses": {
                        "200": _json(
                            CreateTokenResponse,
                            "The token (isCached: true for a repeated idempotency key).",
                        ),
                        **_errors(400, 401, 413, 422, 429, 503),
                    },
                },
                "get": {
                    "operationId": "listTokens",
                    "summary": "List tokens, newest first",
                    "security": secured,
                    "parameters": _query_parameters(),
                    "responses": {
                        "200": _json(TokenList, "A page of tokens."),
                        **_errors(400, 401, 414, 429),
                    },
                },
            },
            "/api/v1/waitpoints/tokens/{id}": {
                "get": {
                    "operationId": "retrieveToken",
                    "summary": "Retrieve a token with its output",
                    "security": secured,
                    "parameters": [TOKEN_ID],
                    "responses": {
                        "200": _json(TokenRetrieveResponse, "The token."),
                        **_errors(401, 404, 429),
                    },
                }
            },
            "/api/v1/waitpoints/tokens/{id}/wait": {
                "get": {
                    "operationId": "waitForToken",
                    "summary": "Long poll until the token is completed or times out",
                    "description": "Holds the request until the token leaves WAITING or the "
                    "window ends, then answers with the retrieve object either way. A process "
                    "already holding its maximum of waits answers at once.",
                    "security": secured,
                    "parameters": [
                        TOKEN_ID,
                        {
                            "name": "timeout",
                            "in": "query",
                            "required": False,
                            "description": "How long to hold the request, at most 60s. "
                            + DURATION_DOC,
                            "schema": {"type": "string", "default": "30s"},
                        },
                    ],
                    "responses": {
                        "200": _json(TokenRetrieveResponse, "The token, decided or not."),
                        **_errors(400, 401, 404, 429),
                    },
                }
            },
            "/api/v1/waitpoints/tokens/{id}/complete": {
                "post": {
                    "operationId": "completeToken",
                    "summary": "Complete a token with an API key",
                    "security": secured,
                    "parameters": [TOKEN_ID],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": _ref(CompleteTokenRequest)}},
                    },
                    "responses": {
                        "200": _json(
                            CompleteTokenResponse, "Done, or already decided (applied: false)."
                        ),
                        **_errors(400, 401, 404, 413, 429, 503),
                    },
                }
            },
            "/api/v1/waitpoints/tokens/{id}/callback/{hash}": {
                "get": {
                    "operationId": "approvalPage",
                    "summary": "The approval page (HTML) for a person holding the URL",
                    "description": "Never changes state. Shows title, description, details, "
                    "tags and deadline, with Approve and Reject buttons while waiting; a "
                    "decision completes the token with {approved, comment, approver}.",
                    "security": [],
                    "parameters": [TOKEN_ID, HASH],
                    "responses": {
                        "200": {"description": "The page.", "content": {"text/html": {}}},
                        "404": {
                            "description": "Link not valid (HTML).",
                            "content": {"text/html": {}},
                        },
                    },
                },
                "post": {
                    "operationId": "completeTokenByCallback",
                    "summary": "Complete a token through its secret callback URL (no API key)",
                    "description": "The whole JSON body becomes the output; an empty or "
                    "non-JSON body counts as {}.",
                    "security": [],
                    "parameters": [
                        TOKEN_ID,
                        {
                            "name": "hash",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                        },
                    ],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": {}}},
                    },
                    "responses": {
                        "200": _json(CompleteTokenResponse, "Done, or already decided."),
                        **_errors(400, 404, 413, 429, 503),
                    },
                },
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness and database check",
                    "security": [],
                    "responses": {
                        "200": _json(HealthResponse, "The database answered."),
                        "503": _json(ErrorResponse, "The database did not answer."),
                    },
                }
            },
        },
    }


@bp.get("/openapi.json")
def openapi_document():
    return jsonify(build_document())
