"""The dashboard's webhook pages, server side: endpoints, the secret shown once, delivery
logs and Redeliver, permissions, CSRF and validation."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app.domain import accounts, webhooks
from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import Delivery, DeliveryAttempt, WebhookEndpoint

PASSWORD = "correct horse battery staple"
HOOKS = "/dashboard/p/1/webhooks"
URL = "https://hooks.example.com/waitpoint"


@pytest.fixture
def users(app):
    with app.app_context():
        accounts.create_user("alice@example.com", PASSWORD, ["alpha"], utcnow())
        accounts.create_user("bob@example.com", PASSWORD, ["beta"], utcnow())


@pytest.fixture
def alice(client, users, api_key):
    response = client.post("/login", data={"email": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 303
    return client


def html(response, status=200) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def add(client, url=URL, types=None, project=1):
    data = {"url": url, "event_types": types if types is not None else list(webhooks.EVENT_TYPES)}
    return client.post(f"/dashboard/p/{project}/webhooks", data=data)


def shown_secret(page: str) -> str | None:
    found = re.search(r'id="webhook-secret"[^>]*>(whsec_[^<]+)<', page)
    return found.group(1) if found else None


def stored(app, endpoint_id=1) -> WebhookEndpoint:
    with app.app_context():
        found = db.session.get(WebhookEndpoint, endpoint_id)
        db.session.expunge_all()
        return found


def failed_delivery(app, api, url=URL) -> tuple[str, int]:
    """A token whose created event went to the endpoint and failed twice."""
    token = api.create(title="Hooked")["id"]
    with app.app_context():
        delivery = db.session.query(Delivery).order_by(Delivery.id.desc()).first()
        now = utcnow()
        delivery.status = "failed"
        delivery.attempts = 2
        db.session.add_all(
            [
                DeliveryAttempt(
                    delivery_id=delivery.id,
                    attempted_at=now - timedelta(minutes=5),
                    duration_ms=12.5,
                    status_code=500,
                    response_excerpt="upstream broke <b>",
                ),
                DeliveryAttempt(
                    delivery_id=delivery.id,
                    attempted_at=now,
                    duration_ms=10_000,
                    error="timed out after 10 s",
                ),
            ]
        )
        db.session.commit()
        return token, delivery.id


# Endpoints -----------------------------------------------------------------------------


def test_the_layout_links_the_projects_webhooks_page(alice):
    page = html(alice.get("/dashboard/p/1/tokens"))
    assert f'href="{HOOKS}"' in page
    assert "No endpoints yet" in html(alice.get(HOOKS))


def test_adding_an_endpoint_shows_its_secret_once(alice, app):
    response = add(alice, types=["waitpoint.completed"])
    assert response.status_code == 303 and response.headers["Location"].endswith(HOOKS)
    page = html(alice.get(HOOKS))
    secret = shown_secret(page)
    endpoint = stored(app)
    assert secret == endpoint.secret and secret.startswith("whsec_")
    assert endpoint.url == URL and endpoint.event_types == '["waitpoint.completed"]'
    assert endpoint.enabled
    assert 'data-copy="#webhook-secret"' in page and "not shown again" in page
    again = html(alice.get(HOOKS))
    assert shown_secret(again) is None and secret not in again
    assert URL in again and "waitpoint.completed" in again


def test_all_event_types_checked_by_default_store_every_type(alice, app):
    form = html(alice.get(HOOKS))
    assert form.count('type="checkbox"') == 3 and form.count("checked") == 3
    assert "<legend>Events to send</legend>" in form
    add(alice)
    assert stored(app).event_types == "[]"
    assert "all events" in html(alice.get(HOOKS))


@pytest.mark.parametrize(
    "url, message",
    [
        ("", "Enter the URL to send events to."),
        ("ftp://example.com/x", "must be an absolute http:// or https:// URL"),
        ("https://user:pw@example.com/", "must not carry a user name or password"),
        ("https://example.com/a#b", "must not have a #fragment"),
        ("https://example.com/" + "a" * 3000, "at most 2048 characters"),
        ("https://exa mple.com/", "must not contain spaces"),
    ],
)
def test_an_invalid_url_is_shown_next_to_the_field(alice, app, url, message):
    page = html(add(alice, url=url), 422)
    error = re.search(r'<p id="url-error" class="field-error" role="alert">([^<]*)</p>', page)
    assert error and message in error.group(1)
    assert 'aria-invalid="true"' in page and 'aria-describedby="url-hint url-error"' in page
    assert stored(app) is None


def test_no_event_type_is_an_error_not_every_type(alice, app):
    page = html(add(alice, types=[]), 422)
    assert "Choose at least one event type." in page
    assert html(add(alice, types=["waitpoint.nope"]), 422).count("field-error") == 1
    assert stored(app) is None


def test_disable_and_enable_an_endpoint(alice, app):
    add(alice)
    assert alice.post(f"{HOOKS}/1/disable").status_code == 303
    endpoint = stored(app)
    assert not endpoint.enabled and endpoint.disabled_reason == "disabled by alice@example.com"
    page = html(alice.get(HOOKS))
    assert "Disabled</span> disabled by alice@example.com" in page
    assert f'action="{HOOKS}/1/enable"' in page
    assert alice.post(f"{HOOKS}/1/enable").status_code == 303
    assert stored(app).enabled and stored(app).disabled_reason is None


def test_an_endpoint_the_sender_disabled_says_why_and_since_when(alice, app):
    add(alice)
    with app.app_context():
        endpoint = db.session.get(WebhookEndpoint, 1)
        endpoint.enabled = False
        endpoint.failing_since = utcnow() - timedelta(days=5)
        endpoint.disabled_reason = "disabled after failing for 5 days"
        db.session.commit()
    page = html(alice.get(HOOKS))
    assert "disabled after failing for 5 days" in page
    assert "Failing since" in page and "5 d ago" in page


def test_rotating_shows_the_new_secret_once(alice, app):
    add(alice)
    first = shown_secret(html(alice.get(HOOKS)))
    assert alice.post(f"{HOOKS}/1/rotate-secret").status_code == 303
    second = shown_secret(html(alice.get(HOOKS)))
    assert second and second != first and stored(app).secret == second
    assert shown_secret(html(alice.get(HOOKS))) is None


def test_removing_an_endpoint(alice, app):
    add(alice)
    assert alice.post(f"{HOOKS}/1/remove").status_code == 303
    assert stored(app) is None
    assert "Removed: " + URL in html(alice.get(HOOKS))
    assert alice.post(f"{HOOKS}/1/remove").status_code == 404


# Deliveries ----------------------------------------------------------------------------


def test_the_endpoint_log_shows_attempts_newest_first(alice, app, api):
    add(alice)
    older, _ = failed_delivery(app, api)
    newer = api.create(title="Later")["id"]
    page = html(alice.get(f"{HOOKS}/1"))
    assert page.index(f"/tokens/{newer}") < page.index(f"/tokens/{older}")
    assert f'href="/dashboard/p/1/tokens/{older}"' in page
    assert "Failed</span>" in page and "Pending</span>" in page
    assert "500" in page and "12 ms" in page and "10000 ms" in page
    assert "upstream broke &lt;b&gt;" in page and "timed out after 10 s" in page
    assert page.count("Redeliver<span") == 2


def test_redeliver_from_the_endpoint_log(alice, app, api):
    add(alice)
    _, delivery_id = failed_delivery(app, api)
    response = alice.post(
        f"/dashboard/p/1/deliveries/{delivery_id}/redeliver", data={"back": "endpoint"}
    )
    assert response.status_code == 303 and response.headers["Location"].endswith(f"{HOOKS}/1")
    with app.app_context():
        delivery = db.session.get(Delivery, delivery_id)
        assert delivery.status == "pending" and delivery.attempts == 0
    assert "will be sent again" in html(alice.get(f"{HOOKS}/1"))


def test_the_token_page_lists_its_deliveries_with_redeliver(alice, app, api):
    add(alice)
    token, delivery_id = failed_delivery(app, api)
    other = api.create(title="Other")["id"]
    page = html(alice.get(f"/dashboard/p/1/tokens/{token}"))
    section = page[page.index("Webhook deliveries") :]
    assert "waitpoint.created" in section and "timed out after 10 s" in section
    assert f"/dashboard/p/1/deliveries/{delivery_id}/redeliver" in section
    assert f'href="{HOOKS}/1"' in section  # to the endpoint's log
    response = alice.post(
        f"/dashboard/p/1/deliveries/{delivery_id}/redeliver", data={"back": "token"}
    )
    assert response.headers["Location"].endswith(f"/dashboard/p/1/tokens/{token}")
    assert "No deliveries yet." not in html(alice.get(f"/dashboard/p/1/tokens/{other}"))


def test_a_token_without_deliveries_says_so(alice, api):
    token = api.create(title="Quiet")["id"]
    assert "No deliveries yet." in html(alice.get(f"/dashboard/p/1/tokens/{token}"))


def test_a_tokens_own_webhook_url_shows_on_its_page(alice, app, api):
    token = api.create(title="Own hook", webhookUrl="https://own.example.com/hook")["id"]
    page = html(alice.get(f"/dashboard/p/1/tokens/{token}"))
    assert "https://own.example.com/hook</code> (this token's own URL)" in page
    assert "Pending</span>" in page and "Not tried yet." in page


# Permissions and CSRF ------------------------------------------------------------------


def bob_endpoint_and_delivery(app, client) -> tuple[int, int]:
    """Project beta's endpoint and a delivery of it (beta's key creates a token)."""
    from app.cli import create_api_key

    from .support import Api

    with app.app_context():
        key = create_api_key("beta")
        endpoint, _ = webhooks.create_endpoint(2, URL, [], utcnow())
        endpoint_id = endpoint.id
    Api(client, key).create(title="Beta's")
    with app.app_context():
        return endpoint_id, db.session.query(Delivery.id).filter_by(project_id=2).scalar()


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/dashboard/p/2/webhooks"),
        ("post", "/dashboard/p/2/webhooks"),
        ("get", "/dashboard/p/1/webhooks/{e}"),
        ("post", "/dashboard/p/1/webhooks/{e}/disable"),
        ("post", "/dashboard/p/1/webhooks/{e}/enable"),
        ("post", "/dashboard/p/1/webhooks/{e}/rotate-secret"),
        ("post", "/dashboard/p/1/webhooks/{e}/remove"),
        ("post", "/dashboard/p/1/deliveries/{d}/redeliver"),
        ("get", "/dashboard/p/2/webhooks/{e}"),
        ("post", "/dashboard/p/2/deliveries/{d}/redeliver"),
        ("get", "/dashboard/p/1/webhooks/99999999999"),
        ("post", "/dashboard/p/1/deliveries/99999999999999999999999/redeliver"),
    ],
)
def test_another_projects_endpoints_and_deliveries_are_404(alice, app, method, path):
    endpoint_id, delivery_id = bob_endpoint_and_delivery(app, alice)
    before = stored(app, endpoint_id)
    response = getattr(alice, method)(path.format(e=endpoint_id, d=delivery_id), data={"url": URL})
    assert response.status_code == 404
    after = stored(app, endpoint_id)
    assert (after.secret, after.enabled) == (before.secret, before.enabled)
    with app.app_context():
        assert db.session.query(WebhookEndpoint).count() == 1


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", HOOKS),
        ("post", HOOKS),
        ("get", f"{HOOKS}/1"),
        ("post", f"{HOOKS}/1/disable"),
        ("post", f"{HOOKS}/1/rotate-secret"),
        ("post", f"{HOOKS}/1/remove"),
        ("post", "/dashboard/p/1/deliveries/1/redeliver"),
    ],
)
def test_without_logging_in_every_page_sends_to_login(client, users, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 302 and "/login?next=" in response.headers["Location"]


@pytest.fixture
def alice_with_csrf(app_factory, users, api_key):
    client = app_factory(WTF_CSRF_ENABLED=True).test_client()
    login = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login).group(1)
    data = {"email": "alice@example.com", "password": PASSWORD, "csrf_token": token}
    assert client.post("/login", data=data).status_code == 303
    return client


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def test_every_action_needs_the_csrf_token(alice_with_csrf, app, api):
    client = alice_with_csrf
    assert add(client).status_code == 400
    token = csrf_of(html(client.get(HOOKS)))
    data = {"url": URL, "event_types": list(webhooks.EVENT_TYPES), "csrf_token": token}
    assert client.post(HOOKS, data=data).status_code == 303
    _, delivery_id = failed_delivery(app, api)
    for action in ("disable", "rotate-secret", "remove"):
        assert client.post(f"{HOOKS}/1/{action}").status_code == 400
    assert client.post(f"/dashboard/p/1/deliveries/{delivery_id}/redeliver").status_code == 400
    endpoint = stored(app)
    assert endpoint is not None and endpoint.enabled
    with app.app_context():
        assert db.session.get(Delivery, delivery_id).status == "failed"
    token = csrf_of(html(client.get(HOOKS)))
    assert client.post(f"{HOOKS}/1/disable", data={"csrf_token": token}).status_code == 303
    assert not stored(app).enabled
