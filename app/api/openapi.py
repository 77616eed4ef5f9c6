"""The OpenAPI 3.1 document, generated from the pydantic models in ``schemas.py``."""

from __future__ import annotations

from functools import cache

from flask import jsonify
from pydantic.json_schema import models_json_schema

from . import bp
from .schemas import (
    DURATION_DOC,
    CancelTokenRequest,
    CompleteTokenRequest,
    CompleteTokenResponse,
    CreateTokenRequest,
    CreateTokenResponse,
    CreateWebhookRequest,
    DeliveryItem,
    DeliveryList,
    ErrorResponse,
    HealthResponse,
    ListDeliveriesQuery,
    ListTokensQuery,
    TokenList,
    TokenRetrieveResponse,
    UpdateWebhookRequest,
    WebhookEndpointItem,
    WebhookEndpointList,
    WebhookEndpointWithSecret,
)

REF = "#/components/schemas/{model}"


def _ref(model) -> dict:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(*codes: int, not_found: str | None = None) -> dict:
    reasons = {
        400: "Invalid input; the message names the field.",
        401: "Missing, malformed or revoked API key.",
        404: not_found or "No such token in this project (or a wrong callback signature).",
        409: "The delivery's endpoint is disabled; enable it first.",
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
            (CancelTokenRequest, "validation"),
            (CompleteTokenResponse, "serialization"),
            (ErrorResponse, "serialization"),
            (HealthResponse, "serialization"),
            (CreateWebhookRequest, "validation"),
            (UpdateWebhookRequest, "validation"),
            (WebhookEndpointItem, "serialization"),
            (WebhookEndpointWithSecret, "serialization"),
            (WebhookEndpointList, "serialization"),
            (DeliveryItem, "serialization"),
            (DeliveryList, "serialization"),
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
            "/api/v1/waitpoints/tokens/{id}/cancel": {
                "post": {
                    "operationId": "cancelToken",
                    "summary": "Withdraw a waiting token (Waitpoint extension)",
                    "description": "COMPLETED, with outputIsError true and the output "
                    '{"code": "WAITPOINT_CANCELLED", "message"}.',
                    "security": secured,
                    "parameters": [TOKEN_ID],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": _ref(CancelTokenRequest)}},
                    },
                    "responses": {
                        "200": _json(
                            CompleteTokenResponse, "Withdrawn, or already final (applied: false)."
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
            **_webhook_paths(secured),
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


WEBHOOK_NOT_FOUND = "No such webhook endpoint in this project."
ENDPOINT_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}


def _body(model) -> dict:
    return {"required": True, "content": {"application/json": {"schema": _ref(model)}}}


def _limit() -> dict:
    prop = ListDeliveriesQuery.model_json_schema()["properties"]["limit"]
    description = prop.pop("description")
    return {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": description,
        "schema": prop,
    }


def _webhook_paths(secured: list) -> dict:
    """Endpoints (``/api/v1/webhooks``) and their deliveries (Waitpoint extension)."""
    endpoint = _json(WebhookEndpointItem, "The endpoint (without its secret).")
    with_secret = _json(WebhookEndpointWithSecret, "The endpoint and its secret, shown once.")
    deliveries = _json(DeliveryList, "The newest deliveries first, with their attempts.")
    return {
        "/api/v1/webhooks": {
            "get": {
                "operationId": "listWebhookEndpoints",
                "summary": "List the project's webhook endpoints",
                "security": secured,
                "responses": {
                    "200": _json(WebhookEndpointList, "Every endpoint, oldest first."),
                    **_errors(401, 429),
                },
            },
            "post": {
                "operationId": "createWebhookEndpoint",
                "summary": "Add a webhook endpoint; the answer holds its secret, once",
                "security": secured,
                "requestBody": _body(CreateWebhookRequest),
                "responses": {
                    "201": with_secret,
                    **_errors(400, 401, 413, 429, 503),
                },
            },
        },
        "/api/v1/webhooks/{id}": {
            "get": {
                "operationId": "retrieveWebhookEndpoint",
                "summary": "Retrieve a webhook endpoint",
                "security": secured,
                "parameters": [ENDPOINT_ID],
                "responses": {
                    "200": endpoint,
                    **_errors(401, 404, 429, not_found=WEBHOOK_NOT_FOUND),
                },
            },
            "patch": {
                "operationId": "updateWebhookEndpoint",
                "summary": "Change a webhook endpoint's URL, event types or enabled state",
                "security": secured,
                "parameters": [ENDPOINT_ID],
                "requestBody": _body(UpdateWebhookRequest),
                "responses": {
                    "200": endpoint,
                    **_errors(400, 401, 404, 413, 429, 503, not_found=WEBHOOK_NOT_FOUND),
                },
            },
            "delete": {
                "operationId": "deleteWebhookEndpoint",
                "summary": "Remove a webhook endpoint and its deliveries",
                "security": secured,
                "parameters": [ENDPOINT_ID],
                "responses": {
                    "204": {"description": "Removed."},
                    **_errors(401, 404, 429, 503, not_found=WEBHOOK_NOT_FOUND),
                },
            },
        },
        "/api/v1/webhooks/{id}/rotate-secret": {
            "post": {
                "operationId": "rotateWebhookSecret",
                "summary": "Give a webhook endpoint a new secret (the old one stops at once)",
                "security": secured,
                "parameters": [ENDPOINT_ID],
                "responses": {
                    "200": with_secret,
                    **_errors(401, 404, 429, 503, not_found=WEBHOOK_NOT_FOUND),
                },
            }
        },
        "/api/v1/webhooks/{id}/deliveries": {
            "get": {
                "operationId": "listEndpointDeliveries",
                "summary": "An endpoint's newest deliveries, with their attempts",
                "security": secured,
                "parameters": [ENDPOINT_ID, _limit()],
                "responses": {
                    "200": deliveries,
                    **_errors(400, 401, 404, 429, not_found=WEBHOOK_NOT_FOUND),
                },
            }
        },
        "/api/v1/waitpoints/tokens/{id}/deliveries": {
            "get": {
                "operationId": "listTokenDeliveries",
                "summary": "A token's newest deliveries (to endpoints and its webhookUrl)",
                "security": secured,
                "parameters": [TOKEN_ID, _limit()],
                "responses": {
                    "200": deliveries,
                    **_errors(400, 401, 404, 429, not_found="No such token in this project."),
                },
            }
        },
        "/api/v1/deliveries/{id}/redeliver": {
            "post": {
                "operationId": "redeliver",
                "summary": "Send a delivery again now, with a fresh set of retries",
                "security": secured,
                "parameters": [ENDPOINT_ID | {"description": "The delivery's id."}],
                "responses": {
                    "202": _json(DeliveryItem, "The delivery, pending again."),
                    **_errors(
                        401, 404, 409, 429, 503, not_found="No such delivery in this project."
                    ),
                },
            }
        },
    }


@bp.get("/openapi.json")
def openapi_document():
    return jsonify(build_document())
