"""Webhook delivery: signed sends to a real receiver, retries, order, safety, durability."""

from __future__ import annotations

import ipaddress
import json
import signal
import threading
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from app.domain import webhooks
from app.domain.timeutil import utcnow
from app.extensions import db
from app.infra.outbound import AddressPolicy
from app.infra.webhooks import RETRY_DELAYS, deliver_due
from app.models import Delivery, DeliveryAttempt, Project, WebhookEndpoint

from .support import TOKENS, Api, ServerProcess, create_database, drop_database


class Receiver:
    """A real HTTP server on 127.0.0.1 that keeps what it is sent; ``answer`` decides the
    response to each request."""

    def __init__(self):
        self.received: list[tuple[str, dict, bytes]] = []
        self.answer = lambda request: Response("thanks", 200)
        self._lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @Request.application
    def _app(self, request):
        with self._lock:
            self.received.append((request.path, dict(request.headers), request.get_data()))
        return self.answer(request)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.server.port}{path}"

    @property
    def ids(self) -> list[str]:
        return [headers["Webhook-Id"] for _, headers, _ in self.received]

    def types(self) -> list[str]:
        return [json.loads(body)["type"] for _, _, body in self.received]


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.server.shutdown()


@pytest.fixture
def hook_app(app_factory):
    """The app, allowed to call the receiver on 127.0.0.1, with a short time-out."""
    return app_factory(WAITPOINT_WEBHOOK_ALLOW_PRIVATE=True, WAITPOINT_WEBHOOK_TIMEOUT=0.5)


@pytest.fixture
def hook_api(hook_app):
    from app.cli import create_api_key

    with hook_app.app_context():
        key = create_api_key("hooks")
    return Api(hook_app.test_client(), key)


def add_endpoint(app, url: str, types=None, project: str = "hooks") -> tuple[int, str]:
    with app.app_context():
        project_id = db.session.scalar(select(Project.id).where(Project.name == project))
        endpoint, secret = webhooks.create_endpoint(project_id, url, types, utcnow())
        return endpoint.id, secret


def deliver(app, now=None, **kwargs) -> int:
    with app.app_context():
        return deliver_due(now=now, **kwargs)


def rows(app, model, *order):
    with app.app_context():
        found = db.session.execute(select(model).order_by(*order or [model.id])).scalars().all()
        db.session.expunge_all()
        return found


def complete(api, token, data=None):
    response = api.post(f"{TOKENS}/{token['id']}/complete", json={"data": data or {"ok": True}})
    assert response.get_json()["applied"] is True


# -- signing ------------------------------------------------------------------------


def test_a_delivery_is_signed_with_the_endpoint_secret_and_a_tampered_body_fails(
    hook_app, hook_api, receiver
):
    _, secret = add_endpoint(hook_app, receiver.url())
    token = hook_api.create(title="Deploy?")
    complete(hook_api, token, {"approved": True})

    assert deliver(hook_app) == 2
    assert receiver.types() == ["waitpoint.created", "waitpoint.completed"]
    path, headers, body = receiver.received[1]
    assert path == "/hook"
    event = Webhook(secret).verify(body, headers)
    assert event["data"]["id"] == token["id"]
    assert event["data"]["status"] == "COMPLETED"
    assert json.loads(event["data"]["output"]) == {"approved": True}
    assert headers["Webhook-Id"].startswith("evt_")
    assert headers["Webhook-Signature"].startswith("v1,")
    assert abs(int(headers["Webhook-Timestamp"]) - time.time()) < 30
    assert headers["Content-Type"] == "application/json"
    assert "Waitpoint" in headers["User-Agent"]

    tampered = body.replace(b"COMPLETED", b"TIMED_OUT")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(body, headers)

    delivered = rows(hook_app, Delivery)
    assert [d.status for d in delivered] == ["delivered", "delivered"]
    attempt = rows(hook_app, DeliveryAttempt)[1]
    assert (attempt.status_code, attempt.response_excerpt, attempt.error) == (200, "thanks", None)
    assert deliver(hook_app) == 0  # nothing is sent twice


def test_a_token_s_own_webhook_url_is_signed_with_the_token_s_secret(hook_app, hook_api, receiver):
    created = hook_api.post(TOKENS, json={"webhookUrl": receiver.url("/own")}).get_json()
    secret = created["webhookSecret"]
    complete(hook_api, created)

    assert deliver(hook_app) == 2
    assert [path for path, _, _ in receiver.received] == ["/own", "/own"]
    for _, headers, body in receiver.received:
        assert Webhook(secret).verify(body, headers)["data"]["id"] == created["id"]


# -- retries ------------------------------------------------------------------------


def test_failures_are_retried_on_the_schedule_with_jitter_then_the_delivery_fails(
    hook_app, hook_api, receiver
):
    receiver.answer = lambda request: Response("down for maintenance", 500)
    add_endpoint(hook_app, receiver.url(), ["waitpoint.created"])
    hook_api.create()

    assert deliver(hook_app) == 1
    for delay in RETRY_DELAYS:
        (delivery,) = rows(hook_app, Delivery)
        assert delivery.status == "pending"
        last = rows(hook_app, DeliveryAttempt)[-1].attempted_at
        waited = delivery.next_attempt_at - last
        assert delay * 0.9 <= waited <= delay * 1.1
        assert deliver(hook_app, now=delivery.next_attempt_at - timedelta(seconds=1)) == 0
        assert deliver(hook_app, now=delivery.next_attempt_at) == 1

    (delivery,) = rows(hook_app, Delivery)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 8, 500)
    assert delivery.last_error == "HTTP 500"
    attempts = rows(hook_app, DeliveryAttempt)
    assert len(attempts) == len(receiver.received) == 8
    assert attempts[0].response_excerpt == "down for maintenance"
    assert timedelta(hours=24) < attempts[-1].attempted_at - attempts[0].attempted_at
    assert deliver(hook_app, now=utcnow() + timedelta(days=30)) == 0
    assert len(set(receiver.ids)) == 1  # every attempt carried the same webhook-id


def test_a_receiver_that_does_not_answer_in_time_is_retried_later(hook_app, hook_api, receiver):
    def slow(request):
        time.sleep(1.0)  # the app's time-out is 0.5 s
        return Response("late", 200)

    receiver.answer = slow
    add_endpoint(hook_app, receiver.url(), ["waitpoint.created"])
    hook_api.create()

    started = time.monotonic()
    assert deliver(hook_app) == 1
    assert time.monotonic() - started < 0.95
    (delivery,) = rows(hook_app, Delivery)
    assert delivery.status == "pending"
    assert "timed out" in delivery.last_error
    (attempt,) = rows(hook_app, DeliveryAttempt)
    assert attempt.status_code is None and 400 <= attempt.duration_ms < 950
    assert timedelta(seconds=4.5) <= delivery.next_attempt_at - attempt.attempted_at

    receiver.answer = lambda request: Response("ok", 204)
    assert deliver(hook_app, now=delivery.next_attempt_at) == 1
    (delivery,) = rows(hook_app, Delivery)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 204)


def test_a_refused_connection_is_a_failed_attempt(hook_app, hook_api, receiver):
    url = receiver.url()
    receiver.server.shutdown()
    receiver.server.server_close()  # nothing listens on the port any more
    add_endpoint(hook_app, url, ["waitpoint.created"])
    hook_api.create()
    assert deliver(hook_app) == 1
    (delivery,) = rows(hook_app, Delivery)
    assert delivery.status == "pending" and delivery.last_status_code is None
    assert "ConnectError" in delivery.last_error


def test_a_redirect_is_not_followed(hook_app, hook_api, receiver):
    receiver.answer = lambda request: Response("", 307, {"Location": receiver.url("/elsewhere")})
    add_endpoint(hook_app, receiver.url(), ["waitpoint.created"])
    hook_api.create()
    assert deliver(hook_app) == 1
    assert [path for path, _, _ in receiver.received] == ["/hook"]
    (delivery,) = rows(hook_app, Delivery)
    assert (delivery.status, delivery.last_status_code) == ("pending", 307)
    assert "redirects are not followed" in delivery.last_error


def test_only_the_first_kibibyte_of_an_answer_is_read(hook_app, hook_api, receiver):
    def endless(request):
        def body():
            yield "x" * 4096
            time.sleep(2)  # the rest would come after the time-out (0.5 s)
            yield "y" * 100_000

        return Response(body(), 200)

    receiver.answer = endless
    add_endpoint(hook_app, receiver.url(), ["waitpoint.created"])
    hook_api.create()
    assert deliver(hook_app) == 1
    (attempt,) = rows(hook_app, DeliveryAttempt)
    assert (attempt.status_code, attempt.error) == (200, None)
    assert attempt.response_excerpt == "x" * 1024
    assert attempt.duration_ms < 500


# -- order, redelivery, disabled endpoints --------------------------------------------


def test_each_endpoint_gets_its_events_in_order_and_a_retry_holds_nothing_back(
    hook_app, hook_api, receiver
):
    add_endpoint(hook_app, receiver.url("/a"))
    add_endpoint(hook_app, receiver.url("/b"))
    first_try = set()

    def fail_the_first_event_once(request):
        event_id = request.headers["Webhook-Id"]
        if event_id == "evt_1" and request.path not in first_try:
            first_try.add(request.path)
            return Response("not yet", 503)
        return Response("ok", 200)

    receiver.answer = fail_the_first_event_once
    tokens = [hook_api.create(tags=[f"n{i}"]) for i in range(5)]
    for token in reversed(tokens):
        complete(hook_api, token)

    assert deliver(hook_app, batch=3) == 20  # ten events to each, three at a time
    for path in ("/a", "/b"):
        ids = [h["Webhook-Id"] for p, h, _ in receiver.received if p == path]
        assert ids == [f"evt_{n}" for n in range(1, 11)]  # evt_1 failed, the rest went on
    later = max(d.next_attempt_at for d in rows(hook_app, Delivery) if d.status == "pending")
    assert deliver(hook_app, now=later) == 2
    assert receiver.ids[-2:] == ["evt_1", "evt_1"]
    assert {d.status for d in rows(hook_app, Delivery)} == {"delivered"}


def test_redeliver_sends_an_event_again_with_the_same_webhook_id(hook_app, hook_api, receiver):
    _, secret = add_endpoint(hook_app, receiver.url(), ["waitpoint.created"])
    hook_api.create()
    assert deliver(hook_app) == 1
    (delivery,) = rows(hook_app, Delivery)
    with hook_app.app_context():
        assert webhooks.redeliver(delivery.project_id, delivery.id, utcnow()) is True
    assert deliver(hook_app) == 1
    assert len(receiver.received) == 2
    assert receiver.ids[0] == receiver.ids[1]
    for _, headers, body in receiver.received:
        Webhook(secret).verify(body, headers)
    assert len(rows(hook_app, DeliveryAttempt)) == 2


def test_a_disabled_endpoint_gets_nothing(hook_app, hook_api, receiver):
    endpoint_id, _ = add_endpoint(hook_app, receiver.url())
    token = hook_api.create()  # enqueued while the endpoint was enabled...
    with hook_app.app_context():
        project_id = rows(hook_app, Delivery)[0].project_id
        webhooks.set_enabled(project_id, endpoint_id, False)
    complete(hook_api, token)  # ...and this one after it was disabled

    assert deliver(hook_app) == 0
    assert receiver.received == []
    (delivery,) = rows(hook_app, Delivery)
    assert delivery.status == "failed"
    assert delivery.last_error == "not sent: the endpoint is disabled"
    assert rows(hook_app, DeliveryAttempt) == []


def test_an_endpoint_that_fails_everything_for_long_enough_is_disabled(
    app_factory, hook_api, receiver
):
    app = app_factory(WAITPOINT_WEBHOOK_ALLOW_PRIVATE=True, WAITPOINT_WEBHOOK_DISABLE_AFTER=3600)
    receiver.answer = lambda request: Response("no", 500)
    endpoint_id, _ = add_endpoint(app, receiver.url(), ["waitpoint.created"])
    hook_api.create()
    assert deliver(app) == 1
    (endpoint,) = rows(app, WebhookEndpoint)
    since = endpoint.failing_since
    assert since is not None and endpoint.enabled

    while rows(app, WebhookEndpoint)[0].enabled:
        (delivery,) = rows(app, Delivery)
        assert delivery.next_attempt_at - since < timedelta(hours=3)
        assert deliver(app, now=delivery.next_attempt_at) == 1
    (endpoint,) = rows(app, WebhookEndpoint)
    assert rows(app, DeliveryAttempt)[-1].attempted_at - since >= timedelta(hours=1)
    assert rows(app, DeliveryAttempt)[-2].attempted_at - since < timedelta(hours=1)
    assert "every delivery failed for 1 hours" in endpoint.disabled_reason

    hook_api.create()  # a disabled endpoint is not given new events
    assert len(rows(app, Delivery)) == 1


def test_a_success_ends_an_endpoint_s_failure_streak(hook_app, hook_api, receiver):
    receiver.answer = lambda request: Response("no", 500)
    add_endpoint(hook_app, receiver.url(), ["waitpoint.created"])
    hook_api.create()
    deliver(hook_app)
    assert rows(hook_app, WebhookEndpoint)[0].failing_since is not None
    receiver.answer = lambda request: Response("ok", 200)
    deliver(hook_app, now=rows(hook_app, Delivery)[0].next_attempt_at)
    assert rows(hook_app, WebhookEndpoint)[0].failing_since is None


# -- safety ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_destination_on_loopback_is_refused_without_the_allow_setting(
    app_factory, hook_api, receiver, host
):
    app = app_factory()  # WAITPOINT_WEBHOOK_ALLOW_PRIVATE off
    add_endpoint(app, receiver.url(host=host), ["waitpoint.created"])
    hook_api.create()
    assert deliver(app) == 1
    assert receiver.received == []
    (delivery,) = rows(app, Delivery)
    assert delivery.status == "pending"  # the operator may allow it; it is retried
    assert delivery.last_error.startswith("refused: ")
    assert "loopback" in delivery.last_error
    assert "WAITPOINT_WEBHOOK_ALLOW_PRIVATE" in delivery.last_error
    if host == "localhost":
        assert "localhost resolves to 127.0.0.1" in delivery.last_error


@pytest.mark.parametrize(
    ("allowed", "host", "sent"),
    [
        (("10.0.0.0/8",), "127.0.0.1", False),
        (("127.0.0.1/32",), "127.0.0.1", True),
        (("127.0.0.0/8",), "localhost", True),
        (("localhost",), "localhost", True),
        (("localhost",), "127.0.0.1", False),
    ],
)
def test_the_allow_list_names_networks_and_host_names(
    app_factory, hook_api, receiver, allowed, host, sent
):
    app = app_factory(WAITPOINT_WEBHOOK_ALLOW_PRIVATE=allowed)
    add_endpoint(app, receiver.url(host=host), ["waitpoint.created"])
    hook_api.create()
    deliver(app)
    assert len(receiver.received) == (1 if sent else 0)


@pytest.mark.parametrize(
    ("address", "setting", "allowed"),
    [
        ("93.184.216.34", False, True),
        ("2606:4700::1111", False, True),
        ("10.1.2.3", False, False),
        ("192.168.1.1", False, False),
        ("172.16.0.1", False, False),
        ("100.64.0.1", False, False),
        ("169.254.1.1", False, False),
        ("0.0.0.0", False, False),
        ("224.0.0.1", False, False),
        ("::1", False, False),
        ("::", False, False),
        ("fe80::1", False, False),
        ("fd12:3456::1", False, False),
        ("::ffff:127.0.0.1", False, False),
        ("64:ff9b::a01:203", False, False),  # NAT64 of 10.1.2.3
        ("2002:7f00:1::", False, False),  # 6to4 of 127.0.0.1
        ("10.1.2.3", True, True),
        ("::1", True, True),
        ("169.254.169.254", True, False),  # cloud metadata: "on" is not enough
        ("fd00:ec2::254", True, False),
        ("169.254.169.254", ("169.254.169.254/32",), True),
    ],
)
def test_addresses_are_judged_by_what_they_are(address, setting, allowed):
    refusal = AddressPolicy(setting).refusal("example.test", ipaddress.ip_address(address))
    assert (refusal is None) is allowed


# -- operators ------------------------------------------------------------------------


def test_waitpoint_deliver_runs_one_pass_and_prints_the_attempts(hook_app, hook_api, receiver):
    add_endpoint(hook_app, receiver.url(), ["waitpoint.created"])
    hook_api.create()
    hook_api.create()
    result = hook_app.test_cli_runner().invoke(args=["deliver"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["2", "mail: 0"]
    assert len(receiver.received) == 2


def test_delivery_metrics(hook_app, hook_api, receiver):
    from app.infra.metrics import exposition

    receiver.answer = lambda request: Response("no", 500)
    add_endpoint(hook_app, receiver.url(), ["waitpoint.created"])
    hook_api.create()
    with hook_app.app_context():
        before = exposition().decode()
        deliver_due()
        after = exposition().decode()

    def value(text, name):
        lines = [line for line in text.splitlines() if line.startswith(name + " ")]
        return float(lines[0].split()[-1]) if lines else 0.0

    counted = 'waitpoint_webhook_attempts_total{result="http_error"}'
    assert value(after, counted) == value(before, counted) + 1
    assert value(after, "waitpoint_webhook_deliveries_pending") == 1
    assert value(before, "waitpoint_webhook_delivery_lag_seconds") >= 0
    assert value(after, "waitpoint_webhook_attempt_duration_seconds_count") >= 1


# -- real servers ---------------------------------------------------------------------


def _cli_endpoint(server: ServerProcess, project: str, url: str) -> str:
    """``waitpoint webhooks add``: the secret is its last line."""
    out = server.cli("webhooks", "add", "--project", project, "--url", url).stdout
    return out.strip().splitlines()[-1]


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.slow
def test_two_servers_on_one_database_deliver_each_event_exactly_once(tmp_path, receiver):
    url = create_database(tmp_path)
    env = {"WAITPOINT_WEBHOOK_ALLOW_PRIVATE": "on"}
    servers = [ServerProcess(url, tmp_path, **env).start()]
    try:
        servers.append(ServerProcess(url, tmp_path, **env).start())
        key = servers[0].new_key("twins")
        secret = _cli_endpoint(servers[0], "twins", receiver.url())
        auth = {"Authorization": f"Bearer {key}"}
        count = 40
        for i in range(count):
            base = servers[i % 2].url
            token = httpx.post(base + TOKENS, json={}, headers=auth).json()
            other = servers[(i + 1) % 2].url
            done = httpx.post(
                f"{other}{TOKENS}/{token['id']}/complete", json={"data": i}, headers=auth
            )
            assert done.json()["applied"] is True
        _wait_for(lambda: len(receiver.received) >= 2 * count, 20, "not all delivered")
        time.sleep(1.5)  # time for a duplicate to show up
        assert sorted(receiver.ids) == sorted({f"evt_{n}" for n in range(1, 2 * count + 1)})
        for _, headers, body in receiver.received:
            Webhook(secret).verify(body, headers)
    finally:
        for server in servers:
            server.stop()
        drop_database(url)


@pytest.mark.slow
def test_a_completion_acknowledged_before_a_crash_is_still_delivered(tmp_path, receiver):
    url = create_database(tmp_path)
    # The first run sends nothing, so whatever arrives was sent after the restart.
    server = ServerProcess(
        url, tmp_path, WAITPOINT_WEBHOOK_ALLOW_PRIVATE="on", WAITPOINT_WEBHOOKS="off"
    ).start()
    try:
        key = server.new_key("durable")
        secret = _cli_endpoint(server, "durable", receiver.url())
        auth = {"Authorization": f"Bearer {key}"}
        token = httpx.post(server.url + TOKENS, json={}, headers=auth).json()
        done = httpx.post(f"{server.url}{TOKENS}/{token['id']}/complete", json={}, headers=auth)
        assert done.json()["applied"] is True
        server.stop(signal.SIGKILL)
        assert receiver.received == []

        server.env["WAITPOINT_WEBHOOKS"] = "on"
        server.start()
        _wait_for(lambda: len(receiver.received) >= 2, 10, "not delivered after the restart")
        events = [Webhook(secret).verify(body, headers) for _, headers, body in receiver.received]
        assert [e["type"] for e in events] == ["waitpoint.created", "waitpoint.completed"]
        assert {e["data"]["id"] for e in events} == {token["id"]}
    finally:
        server.stop()
        drop_database(url)
