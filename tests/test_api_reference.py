"""docs/api.md, the API reference, agrees with the code: routes, fields, limits, errors, links.

The OpenAPI document and the request models are generated from, or are, the code that
validates requests; these tests hold the hand-written reference to them, so that a new
route, field, limit or error status fails here until it is documented.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from app.api import schemas
from app.api.openapi import build_document

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "api.md"
README = ROOT / "README.md"
DOCUMENT = build_document()
OPERATIONS = [
    (method.upper(), path, operation)
    for path, methods in DOCUMENT["paths"].items()
    for method, operation in methods.items()
]
# The section of the reference that documents each operation's errors ("Errors: ...").
ERROR_SECTIONS = {
    "createToken": "Create a token",
    "retrieveToken": "Retrieve a token",
    "listTokens": "List tokens",
    "completeToken": "Complete a token with an API key",
    "cancelToken": "Cancel a token",
    "completeTokenByCallback": "The callback URL",
    "waitForToken": "Wait for a token (long poll)",
    "listWebhookEndpoints": "List endpoints",
    "createWebhookEndpoint": "Add an endpoint",
    "retrieveWebhookEndpoint": "Retrieve an endpoint",
    "updateWebhookEndpoint": "Change an endpoint",
    "rotateWebhookSecret": "Rotate an endpoint's secret",
    "deleteWebhookEndpoint": "Remove an endpoint",
    "listEndpointDeliveries": "An endpoint's deliveries",
    "listTokenDeliveries": "A token's deliveries",
    "redeliver": "Redeliver",
    # Pages and service routes describe their few answers in prose.
    "approvalPage": None,
    "health": None,
}
# Statuses the server answers beyond those the OpenAPI document lists per operation.
OTHER_STATUSES = {405, 500}
# Names in URL rules, as the reference writes them.
PATH_PARAMETERS = {
    "token_id": "id",
    "signature": "hash",
    "endpoint_id": "id",
    "delivery_id": "id",
}


def reference_text() -> str:
    return REFERENCE.read_text(encoding="utf-8")


def sections(text: str) -> dict[str, str]:
    """Each heading (## or ###, without backticks) and the text up to the next heading."""
    parts = re.split(r"^#{2,3} (.+)$", text, flags=re.MULTILINE)
    pairs = zip(parts[1::2], parts[2::2], strict=True)
    return {title.replace("`", ""): body for title, body in pairs}


def section(title: str) -> str:
    found = sections(reference_text())
    assert title in found, f"docs/api.md has no section {title!r}"
    return found[title]


def table_rows(text: str) -> dict[str, str]:
    """Table rows keyed by their first cell's `name`."""
    return {match[1]: match[0] for match in re.finditer(r"^\| `([^`]+)` \|.*$", text, re.MULTILINE)}


def statuses(text: str) -> set[int]:
    return {int(code) for code in re.findall(r"\b([45]\d\d)\b", text)}


def limits(schema: dict) -> set[int]:
    """Every length, size and bound a JSON schema states, however deep."""
    found = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            bound = key in {"minLength", "maxLength", "minimum", "maximum", "maxProperties"}
            if bound or (key == "default" and type(value) is int):
                found.add(value)
            else:
                found |= limits(value)
    elif isinstance(schema, list):
        for item in schema:
            found |= limits(item)
    return found


def mentions(row: str, number: int) -> bool:
    """``number`` as a whole number in ``row``, written 10000 or 10,000."""
    return any(
        re.search(rf"(?<!\d)(?<!\d,){re.escape(form)}(?!\d)(?!,\d)", row)
        for form in {str(number), f"{number:,}"}
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [(m, p) for m, p, _ in OPERATIONS],
    ids=[f"{m} {p}" for m, p, _ in OPERATIONS],
)
def test_every_operation_of_the_openapi_document_is_in_the_reference(method, path):
    assert f"`{method} {path}`" in section("Routes")


def test_every_api_route_the_app_serves_is_in_the_reference(app):
    documented = section("Routes")
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith("/api/") or rule.rule in ("/healthz", "/metrics")):
            continue
        path = re.sub(
            r"<(?:\w+:)?(\w+)>", lambda m: "{" + PATH_PARAMETERS.get(m[1], m[1]) + "}", rule.rule
        )
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            assert f"`{method} {path}`" in documented, f"{method} {path} is not in docs/api.md"


def test_the_reference_matches_the_openapi_document_the_app_serves(client):
    served = client.get("/api/openapi.json").get_json()
    assert served["paths"].keys() == DOCUMENT["paths"].keys()


@pytest.mark.parametrize(
    ("method", "path", "operation"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS]
)
def test_each_routes_errors_are_the_ones_the_openapi_document_lists(method, path, operation):
    assert operation["operationId"] in ERROR_SECTIONS, (
        f"{operation['operationId']}: new operation; document it and add it to ERROR_SECTIONS"
    )
    title = ERROR_SECTIONS[operation["operationId"]]
    if title is None:
        return
    lines = re.findall(r"^Errors[^:\n]*:(.*(?:\n(?!\n).*)*)", section(title), re.MULTILINE)
    assert len(lines) == 1, f"{title}: expected one 'Errors: ...' line"
    listed = {int(code) for code in operation["responses"] if code[0] in "45"}
    assert statuses(lines[0]) == listed


def test_every_error_status_has_a_row_in_the_error_table():
    used = {
        int(code)
        for _, _, operation in OPERATIONS
        for code in operation["responses"]
        if code[0] in "45"
    }
    rows = re.findall(r"^\| \*\*(\d{3})\*\* \|", section("Errors"), re.MULTILINE)
    assert used | OTHER_STATUSES <= {int(code) for code in rows}


@pytest.mark.parametrize(
    ("model", "title"),
    [
        (schemas.CreateTokenRequest, "Create a token"),
        (schemas.ListTokensQuery, "List tokens"),
        (schemas.CompleteTokenRequest, "Complete a token with an API key"),
        (schemas.CreateWebhookRequest, "Add an endpoint"),
        (schemas.UpdateWebhookRequest, "Change an endpoint"),
        (schemas.ListDeliveriesQuery, "An endpoint's deliveries"),
        (schemas.ListDeliveriesQuery, "A token's deliveries"),
    ],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_every_request_field_is_documented_with_its_limits(model, title):
    properties = model.model_json_schema()["properties"]
    rows = table_rows(section(title))
    for name, schema in properties.items():
        assert name in rows, f"{name} is not documented under {title!r}"
        for number in limits(schema):
            assert mentions(rows[name], number), f"{name}: its limit {number} is not documented"


def test_the_reference_documents_no_request_field_the_code_does_not_take():
    create_rows = table_rows(section("Create a token")).keys()
    response = set(schemas.CreateTokenResponse.model_fields)
    assert create_rows - response == set(schemas.CreateTokenRequest.model_fields)
    parameters = {name for name in table_rows(section("List tokens")) if "[" in name}
    assert parameters == set(schemas.ListTokensQuery.model_json_schema()["properties"])


def test_the_tag_limit_is_documented():
    create = table_rows(section("Create a token"))
    assert f"at most {schemas.MAX_TAGS} distinct tags" in create["tags"]
    assert f"at most {schemas.MAX_TAGS} tags" in table_rows(section("List tokens"))["filter[tags]"]


def test_every_response_field_is_documented():
    token = table_rows(section("The token object"))
    for name in schemas.TokenRetrieveResponse.model_fields:
        assert name in token, f"token object: {name} is not documented"
        retrieve_only = name not in schemas.TokenItem.model_fields
        assert ("retrieve only" in token[name]) == retrieve_only, name
    for name in schemas.Decision.model_fields:
        assert f"| `{name}` |" in section("The token object").split("**`decision`**")[1], name
    created = table_rows(section("Create a token"))
    assert set(schemas.CreateTokenResponse.model_fields) <= created.keys()
    listed = table_rows(section("List tokens"))
    assert "data" in listed
    assert {f"pagination.{name}" for name in schemas.Pagination.model_fields} <= listed.keys()
    completed = table_rows(section("Complete a token with an API key"))
    assert set(schemas.CompleteTokenResponse.model_fields) <= completed.keys()
    endpoint = table_rows(section("The endpoint object"))
    assert set(schemas.WebhookEndpointWithSecret.model_fields) <= endpoint.keys()
    delivery = table_rows(section("The delivery object"))
    assert set(schemas.DeliveryItem.model_fields) <= delivery.keys()
    attempt = {f"attempts[].{name}" for name in schemas.DeliveryAttemptItem.model_fields}
    assert attempt <= delivery.keys()


def test_the_reference_names_the_sdk_version_the_compatibility_tests_run():
    package = json.loads((ROOT / "tests" / "compat" / "package.json").read_text())
    version = package["dependencies"]["@trigger.dev/sdk"]
    assert f"`@trigger.dev/sdk` {version}" in section("Compatibility")


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    return {slug(title) for title in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("document", [REFERENCE, README], ids=lambda p: p.name)
def test_every_link_to_a_file_or_heading_of_the_repository_resolves(document):
    text = document.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # another site
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        assert linked.is_relative_to(ROOT), f"{target}: outside the repository"
        assert linked.exists(), f"{target}: no such file"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked.read_text(encoding="utf-8")), f"{target}: no heading"


TEXT_SUFFIXES = {".py", ".md", ".toml", ".cfg", ".ini", ".txt", ".json", ".mjs", ".html", ".yml"}
# Not the project's own text: tools, caches, installed packages, local data.
SKIPPED = {".git", ".venv", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache"}
SKIPPED_TOP = {"instance", "build"}
# The old wire contract beside the repository, and links to it; written in pieces so that
# neither this file nor a grep for the same names finds them here.
OUTSIDE = re.compile(
    "|".join([r"\.\./" + "shared", "CON" + "TRACT" + r"\.md", "/work/" + "shared"])
)


def project_files():
    for folder, subfolders, names in os.walk(ROOT):
        top = Path(folder) == ROOT
        subfolders[:] = [
            d
            for d in subfolders
            if d not in SKIPPED and not d.endswith(".egg-info") and not (top and d in SKIPPED_TOP)
        ]
        for name in names:
            if Path(name).suffix in TEXT_SUFFIXES:
                yield Path(folder, name)


def test_the_repository_never_points_at_files_outside_it():
    offenders = [
        str(path.relative_to(ROOT))
        for path in project_files()
        if OUTSIDE.search(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert offenders == []


def test_the_readme_links_the_reference():
    assert "](docs/api.md)" in README.read_text(encoding="utf-8")


def test_the_readmes_map_of_the_code_names_every_module():
    readme = README.read_text(encoding="utf-8")
    code_map = readme.split("## Development", 1)[1].split("```")[1]
    missing = [
        str(module.relative_to(ROOT))
        for module in sorted((ROOT / "app").rglob("*.py"))
        if module.name != "__init__.py" and not re.search(rf"\b{module.stem}\b", code_map)
    ]
    assert missing == []
