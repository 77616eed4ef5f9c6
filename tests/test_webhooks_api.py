"""Webhook endpoints and deliveries through the JSON API: /api/v1/webhooks, the token's own
webhookUrl, the delivery log and redelivery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import Delivery, DeliveryAttempt, Token, WebhookEndpoint

from .support import TOKENS, error_of

WEBHOOKS = "/api/v1/webhooks"
HOOK = "https://hooks.example.com/waitpoint"


def add_endpoint(api, **body) -> dict:
    response = api.post(WEBHOOKS, json={"url": HOOK, **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def stored_endpoint(app, endpoint_id: int) -> WebhookEndpoint:
    with app.app_context():
        return db.session.get(WebhookEndpoint, endpoint_id)


def deliveries_of(app, **where) -> list[Delivery]:
    with app.app_context():
        query = select(Delivery).filter_by(**where).order_by(Delivery.id)
        return list(db.session.execute(query).scalars())


# -- endpoints ---------------------------------------------------------------------


def test_it_creates_an_endpoint_and_shows_its_secret_only_in_that_answer(app, api):
    created = add_endpoint(api)
    assert created["secret"].startswith("whsec_")
    assert created["secret"] == stored_endpoint(app, created["id"]).secret
    assert {k: v for k, v in created.items() if k not in ("id", "createdAt", "secret")} == {
        "url": HOOK,
        "eventTypes": [],
        "enabled": True,
    }
    for path in (WEBHOOKS, f"{WEBHOOKS}/{created['id']}"):
        response = api.get(path)
        assert response.status_code == 200
        assert created["secret"] not in response.get_data(as_text=True)
    assert api.get(WEBHOOKS).get_json() == {
        "data": [{k: v for k, v in created.items() if k != "secret"}]
    }


def test_it_keeps_the_event_types_asked_for_without_duplicates(api):
    types = ["waitpoint.completed", "waitpoint.timed_out", "waitpoint.completed"]
    created = add_endpoint(api, eventTypes=types)
    assert created["eventTypes"] == ["waitpoint.completed", "waitpoint.timed_out"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "url: Field required"),
        ({"url": 42}, "url: Input should be a valid string"),
        ({"url": "ftp://hooks.example.com/"}, "url: must be an absolute http:// or https:// URL"),
        ({"url": "https://user:pw@hooks.example.com/"}, "url: must not carry a user name"),
        ({"url": "https://hooks.example.com/a b"}, "url: must not contain spaces"),
        ({"url": "https://h.example.com/" + "a" * 2048}, "url: String should have at most 2048"),
        ({"url": HOOK, "eventTypes": ["waitpoint.decided"]}, "eventTypes: Input should be"),
        ({"url": HOOK, "eventTypes": "waitpoint.created"}, "eventTypes: Input should be a valid"),
        ({"url": HOOK, "secret": "whsec_mine"}, "secret: is not a known field"),
        (["not", "an", "object"], "body: must be a JSON object"),
    ],
)
def test_a_bad_endpoint_is_a_400_naming_the_field(app, api, body, message):
    assert error_of(api.post(WEBHOOKS, json=body), 400).startswith(message)
    with app.app_context():
        assert db.session.execute(select(WebhookEndpoint)).first() is None


def test_disabling_and_enabling_through_patch(app, api):
    created = add_endpoint(api)
    path = f"{WEBHOOKS}/{created['id']}"
    disabled = api.patch(path, json={"enabled": False}).get_json()
    assert disabled["enabled"] is False
    assert disabled["disabledReason"] == "disabled through the API"
    assert api.get(path).get_json() == disabled
    with app.app_context():
        row = db.session.get(WebhookEndpoint, created["id"])
        row.failing_since = utcnow() - timedelta(days=1)
        db.session.commit()
    assert "failingSince" in api.get(path).get_json()
    enabled = api.patch(path, json={"enabled": True}).get_json()
    assert enabled["enabled"] is True
    assert "disabledReason" not in enabled and "failingSince" not in enabled


def test_patch_changes_the_url_and_event_types_and_leaves_the_rest(app, api):
    created = add_endpoint(api)
    path = f"{WEBHOOKS}/{created['id']}"
    changed = api.patch(path, json={"url": "http://other.example.com/hook"}).get_json()
    assert changed["url"] == "http://other.example.com/hook"
    assert changed["eventTypes"] == [] and changed["enabled"] is True
    changed = api.patch(path, json={"eventTypes": ["waitpoint.timed_out"]}).get_json()
    assert changed["eventTypes"] == ["waitpoint.timed_out"]
    assert changed["url"] == "http://other.example.com/hook"
    assert api.patch(path, json={}).get_json() == changed
    assert "secret" not in changed
    assert stored_endpoint(app, created["id"]).secret == created["secret"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"enabled": "no"}, "enabled: Input should be a valid boolean"),
        ({"url": "mailto:ops@example.com"}, "url: must be an absolute http:// or https:// URL"),
        ({"url": ""}, "url: String should have at least 1 character"),
        ({"eventTypes": ["created"]}, "eventTypes: Input should be"),
        ({"secret": "whsec_x"}, "secret: is not a known field"),
    ],
)
def test_a_bad_patch_is_a_400_naming_the_field_and_changes_nothing(app, api, body, message):
    created = add_endpoint(api)
    response = api.patch(f"{WEBHOOKS}/{created['id']}", json=body)
    assert error_of(response, 400).startswith(message)
    assert stored_endpoint(app, created["id"]).url == HOOK


def test_rotating_the_secret_shows_the_new_one_once(app, api):
    created = add_endpoint(api)
    response = api.post(f"{WEBHOOKS}/{created['id']}/rotate-secret")
    assert response.status_code == 200
    rotated = response.get_json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert stored_endpoint(app, created["id"]).secret == rotated["secret"]
    assert {k: v for k, v in rotated.items() if k != "secret"} == api.get(
        f"{WEBHOOKS}/{created['id']}"
    ).get_json()


def test_deleting_an_endpoint_removes_it_and_its_deliveries(app, api):
    created = add_endpoint(api)
    api.create()
    assert len(deliveries_of(app, endpoint_id=created["id"])) == 1
    response = api.delete(f"{WEBHOOKS}/{created['id']}")
    assert response.status_code == 204 and response.get_data() == b""
    assert error_of(api.get(f"{WEBHOOKS}/{created['id']}"), 404) == "webhook endpoint: not found"
    assert api.get(WEBHOOKS).get_json() == {"data": []}
    assert deliveries_of(app, endpoint_id=created["id"]) == []


# -- permissions -------------------------------------------------------------------

ENDPOINT_ROUTES = [
    ("get", "{webhooks}/{id}"),
    ("patch", "{webhooks}/{id}"),
    ("delete", "{webhooks}/{id}"),
    ("post", "{webhooks}/{id}/rotate-secret"),
    ("get", "{webhooks}/{id}/deliveries"),
]


@pytest.mark.parametrize(("method", "route"), ENDPOINT_ROUTES)
def test_another_projects_endpoint_is_a_404_like_an_unknown_one(app, api, other_api, method, route):
    created = add_endpoint(api)
    theirs = route.format(webhooks=WEBHOOKS, id=created["id"])
    unknown = route.format(webhooks=WEBHOOKS, id=created["id"] + 1000)
    huge = route.format(webhooks=WEBHOOKS, id=10**30)
    kwargs = {"json": {"enabled": False}} if method == "patch" else {}
    answers = [getattr(other_api, method)(path, **kwargs) for path in (theirs, unknown, huge)]
    assert [error_of(a, 404) for a in answers] == ["webhook endpoint: not found"] * 3
    after = stored_endpoint(app, created["id"])
    assert after is not None and after.enabled and after.secret == created["secret"]
    assert other_api.get(WEBHOOKS).get_json() == {"data": []}


def test_another_projects_delivery_cannot_be_redelivered(app, api, other_api):
    add_endpoint(api)
    api.create()
    (delivery,) = deliveries_of(app)
    _finish(app, delivery.id, "failed")
    for delivery_id in (delivery.id, delivery.id + 1000, 10**30):
        response = other_api.post(f"/api/v1/deliveries/{delivery_id}/redeliver")
        assert error_of(response, 404) == "delivery: not found"
    assert deliveries_of(app)[0].status == "failed"


def test_another_projects_token_has_no_deliveries_to_show(api, other_api):
    add_endpoint(api)
    token = api.create()
    response = other_api.get(f"{TOKENS}/{token['id']}/deliveries")
    assert error_of(response, 404) == "token: not found"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", WEBHOOKS),
        ("post", WEBHOOKS),
        ("get", f"{WEBHOOKS}/1"),
        ("patch", f"{WEBHOOKS}/1"),
        ("delete", f"{WEBHOOKS}/1"),
        ("post", f"{WEBHOOKS}/1/rotate-secret"),
        ("get", f"{WEBHOOKS}/1/deliveries"),
        ("get", f"{TOKENS}/waitpoint_x/deliveries"),
        ("post", "/api/v1/deliveries/1/redeliver"),
    ],
)
def test_every_webhook_route_needs_an_api_key(client, method, path):
    response = getattr(client, method)(path, json={"url": HOOK})
    assert error_of(response, 401).startswith("Authorization:")


# -- deliveries --------------------------------------------------------------------


def _finish(app, delivery_id: int, status: str, code: int = 500) -> None:
    """What a sender leaves behind after trying: an attempt, and the delivery's status."""
    with app.app_context():
        delivery = db.session.get(Delivery, delivery_id)
        delivery.status = status
        delivery.attempts = 1
        delivery.last_status_code = code
        db.session.add(
            DeliveryAttempt(
                delivery_id=delivery_id,
                attempted_at=utcnow(),
                duration_ms=12.5,
                status_code=code,
                response_excerpt="upstream broke",
                error=f"HTTP {code}",
            )
        )
        db.session.commit()


def test_an_endpoint_lists_its_deliveries_newest_first_with_their_attempts(app, api):
    endpoint = add_endpoint(api)
    token = api.create()
    api.post(f"{TOKENS}/{token['id']}/complete", json={"data": {"ok": True}})
    created, completed = deliveries_of(app, endpoint_id=endpoint["id"])
    _finish(app, created.id, "failed")
    listed = api.get(f"{WEBHOOKS}/{endpoint['id']}/deliveries").get_json()["data"]
    assert [d["id"] for d in listed] == [completed.id, created.id]
    assert [d["eventType"] for d in listed] == ["waitpoint.completed", "waitpoint.created"]
    newest, oldest = listed
    assert newest["status"] == "pending" and "nextAttemptAt" in newest
    assert newest["attempts"] == []
    assert oldest["status"] == "failed" and "nextAttemptAt" not in oldest
    assert oldest["tokenId"] == token["id"] and oldest["endpointId"] == endpoint["id"]
    assert oldest["url"] == HOOK and oldest["eventId"] == f"evt_{created.event_id}"
    (attempt,) = oldest["attempts"]
    assert attempt["statusCode"] == 500 and attempt["durationMs"] == 12.5
    assert attempt["error"] == "HTTP 500" and attempt["response"] == "upstream broke"
    assert attempt["attemptedAt"].endswith("Z")


def test_an_endpoint_gets_only_the_event_types_it_wants(app, api):
    endpoint = add_endpoint(api, eventTypes=["waitpoint.completed"])
    token = api.create()
    path = f"{WEBHOOKS}/{endpoint['id']}/deliveries"
    assert api.get(path).get_json() == {"data": []}
    api.post(f"{TOKENS}/{token['id']}/complete", json={})
    assert [d["eventType"] for d in api.get(path).get_json()["data"]] == ["waitpoint.completed"]


def test_the_delivery_list_has_a_size_limit(api):
    endpoint = add_endpoint(api)
    for _ in range(3):
        api.create()
    path = f"{WEBHOOKS}/{endpoint['id']}/deliveries"
    assert len(api.get(path).get_json()["data"]) == 3
    assert len(api.get(path, query_string={"limit": "2"}).get_json()["data"]) == 2


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "limit: Input should be greater than or equal to 1"),
        ("limit=101", "limit: Input should be less than or equal to 100"),
        (
            "limit=many",
            "limit: Input should be a valid integer, unable to parse string as an integer",
        ),
        ("limit=1&limit=2", "limit: may be given only once"),
        ("page=2", "page: is not a known field"),
    ],
)
def test_a_bad_delivery_list_query_is_a_400_naming_the_parameter(api, query, message):
    endpoint = add_endpoint(api)
    token = api.create()
    for path in (f"{WEBHOOKS}/{endpoint['id']}/deliveries", f"{TOKENS}/{token['id']}/deliveries"):
        assert error_of(api.get(f"{path}?{query}"), 400) == message


def test_redeliver_makes_a_finished_delivery_pending_again(app, api):
    add_endpoint(api)
    api.create()
    (delivery,) = deliveries_of(app)
    _finish(app, delivery.id, "failed")
    response = api.post(f"/api/v1/deliveries/{delivery.id}/redeliver")
    assert response.status_code == 202
    body = response.get_json()
    assert body["id"] == delivery.id and body["status"] == "pending"
    assert "nextAttemptAt" in body and len(body["attempts"]) == 1  # the log stays
    (after,) = deliveries_of(app)
    assert after.status == "pending" and after.attempts == 0 and after.claimed_until is None
    assert after.next_attempt_at <= utcnow()


def test_redeliver_refuses_a_delivery_of_a_disabled_endpoint(app, api):
    endpoint = add_endpoint(api)
    api.create()
    (delivery,) = deliveries_of(app)
    _finish(app, delivery.id, "failed")
    api.patch(f"{WEBHOOKS}/{endpoint['id']}", json={"enabled": False})
    response = api.post(f"/api/v1/deliveries/{delivery.id}/redeliver")
    assert error_of(response, 409).startswith("delivery: its endpoint is disabled")
    assert deliveries_of(app)[0].status == "failed"


# -- a token's own webhookUrl ------------------------------------------------------


def test_a_token_created_with_a_webhook_url_answers_its_secret_once(app, api):
    created = api.create(webhookUrl="https://agent.example.com/hook")
    assert created["webhookSecret"].startswith("whsec_")
    with app.app_context():
        token = db.session.execute(select(Token)).scalar_one()
        assert token.webhook_url == "https://agent.example.com/hook"
        assert token.webhook_secret == created["webhookSecret"]
    retrieved = api.retrieve(created["id"])
    assert created["webhookSecret"] not in str(retrieved)


def test_a_token_without_a_webhook_url_has_no_secret(api):
    assert "webhookSecret" not in api.create(title="plain")


def test_an_idempotent_repeat_does_not_show_the_secret_again(api):
    body = {"webhookUrl": "https://agent.example.com/hook", "idempotencyKey": "k1"}
    first = api.create(**body)
    again = api.create(**body)
    assert again["isCached"] is True and again["id"] == first["id"]
    assert "webhookSecret" not in again


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "webhookUrl: must be an absolute http:// or https:// URL"),
        ("https://hooks.example.com/#frag", "webhookUrl: must not have a #fragment"),
        ("", "webhookUrl: String should have at least 1 character"),
        (7, "webhookUrl: Input should be a valid string"),
    ],
)
def test_a_bad_webhook_url_is_a_400_and_makes_no_token(app, api, url, message):
    response = api.post(TOKENS, json={"webhookUrl": url})
    assert error_of(response, 400).startswith(message)
    with app.app_context():
        assert db.session.execute(select(Token)).first() is None


def test_a_tokens_deliveries_include_its_own_webhook_url(app, api):
    endpoint = add_endpoint(api)
    token = api.create(webhookUrl="https://agent.example.com/hook")
    other = api.create()
    api.post(f"{TOKENS}/{token['id']}/complete", json={})
    listed = api.get(f"{TOKENS}/{token['id']}/deliveries").get_json()["data"]
    assert {d["tokenId"] for d in listed} == {token["id"]}
    assert len(listed) == 4  # two events, each to the endpoint and to the token's URL
    own = [d for d in listed if "endpointId" not in d]
    assert [d["url"] for d in own] == ["https://agent.example.com/hook"] * 2
    assert [d["eventType"] for d in own] == ["waitpoint.completed", "waitpoint.created"]
    assert all(d["endpointId"] == endpoint["id"] for d in listed if d not in own)
    others = api.get(f"{TOKENS}/{other['id']}/deliveries").get_json()["data"]
    assert [d["url"] for d in others] == [HOOK]
    missing = api.get(f"{TOKENS}/waitpoint_{'0' * 25}/deliveries")
    assert error_of(missing, 404) == "token: not found"
