"""Health, JSON errors on API paths, and the OpenAPI document."""

import pytest
from openapi_spec_validator import validate

from app.api import schemas

from .support import TOKENS


def test_healthz_checks_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_healthz_reports_an_unreachable_database(app_factory, tmp_path):
    app = app_factory(f"sqlite:///{tmp_path}/missing/dir/db.sqlite")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"error": "database: not reachable"}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/v1/nothing", 404),
        ("delete", TOKENS, 405),
        ("put", f"{TOKENS}/waitpoint_x/complete", 405),
        ("get", f"{TOKENS}/waitpoint_x/complete", 405),
    ],
)
def test_api_errors_are_json(api, method, path, status):
    response = getattr(api, method)(path)
    assert response.status_code == status
    assert response.is_json and set(response.get_json()) == {"error"}


def test_the_openapi_document_is_valid_3_1(client):
    document = client.get("/api/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    validate(document)
    paths = document["paths"]
    assert set(paths[TOKENS]) == {"get", "post"}
    assert "post" in paths[f"{TOKENS}/{{id}}/callback/{{hash}}"]
    names = [p["name"] for p in paths[TOKENS]["get"]["parameters"]]
    assert "filter[createdAt][period]" in names and "page[size]" in names


def test_the_openapi_document_comes_from_the_validating_models(client):
    document = client.get("/api/openapi.json").get_json()
    create = document["components"]["schemas"]["CreateTokenRequest"]
    assert set(create["properties"]) == set(schemas.CreateTokenRequest.model_fields)
    assert create["additionalProperties"] is False
    complete = document["components"]["schemas"]["CompleteTokenResponse"]
    assert "applied" in complete["properties"]


def test_responses_match_the_documented_models(api):
    token = api.create(tags=["a"], timeout="1h", idempotencyKey="k", idempotencyKeyTTL="1d")
    schemas.CreateTokenResponse.model_validate(token, strict=True)
    schemas.TokenRetrieveResponse.model_validate(api.retrieve(token["id"]))
    schemas.TokenList.model_validate(api.get(TOKENS).get_json())
    done = api.post(f"{TOKENS}/{token['id']}/complete", json={"data": 1}).get_json()
    schemas.CompleteTokenResponse.model_validate(done)
    schemas.ErrorResponse.model_validate(api.get(f"{TOKENS}/nope").get_json())
