"""The Python SDK verifies a webhook delivery: ``waitpoint.webhooks.verify``, and the
README's Flask receiver (examples/webhook_receiver.py) against the real sender."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks
from werkzeug.serving import make_server

import waitpoint
from app.domain import webhooks as domain_webhooks
from app.domain.timeutil import utcnow
from app.extensions import db
from app.infra.webhooks import deliver_due
from app.models import Delivery
from waitpoint import WaitpointError, WebhookVerificationError, webhooks

from .support import ROOT

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
BODY = json.dumps(
    {
        "type": "waitpoint.completed",
        "timestamp": "2026-11-28T10:00:00.000Z",
        "data": {"id": "waitpoint_abc", "status": "COMPLETED", "output": '{"ok":true}'},
    }
).encode()


def signed(body=BODY, secret=SECRET, msg_id="42", at=None) -> dict[str, str]:
    """Headers as any Standard Webhooks sender would write them (the package itself)."""
    at = at or datetime.now(UTC)
    signature = standardwebhooks.Webhook(secret).sign(msg_id, at, body.decode())
    return {
        "Webhook-Id": msg_id,
        "Webhook-Timestamp": str(int(at.timestamp())),
        "Webhook-Signature": signature,
    }


def test_a_body_signed_with_the_secret_verifies():
    event = waitpoint.webhooks.verify(BODY, signed(), SECRET)
    assert event.id == "42" and event.type == "waitpoint.completed"
    assert event.timestamp == datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert event.data["id"] == "waitpoint_abc"
    assert webhooks.verify(BODY.decode(), signed(), SECRET) == event  # text works too


def test_one_of_several_signatures_is_enough_during_a_rotation():
    headers = signed()
    other = signed(secret="whsec_" + base64.b64encode(b"x" * 24).decode())
    headers["Webhook-Signature"] = f"{other['Webhook-Signature']} {headers['Webhook-Signature']}"
    assert webhooks.verify(BODY, headers, SECRET).id == "42"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"body": BODY.replace(b"COMPLETED", b"TIMED_OUT")}, "No matching signature"),
        ({"secret": "whsec_" + base64.b64encode(b"y" * 24).decode()}, "No matching signature"),
        ({"shift": -timedelta(minutes=6)}, "too old"),
        ({"shift": timedelta(minutes=6)}, "too new"),
        ({"headers": {"Webhook-Id": None}}, "Missing required headers"),
        ({"headers": {"Webhook-Signature": "v1"}}, "not a valid delivery"),
        ({"headers": {"Webhook-Signature": "v1,%%%"}}, "No matching signature"),
        ({"headers": {"Webhook-Timestamp": "soon"}}, "Invalid Signature Headers"),
        ({"secret": "whsec_!"}, "not a valid delivery"),
        ({"body": b"\xff\xfe"}, "not a valid delivery"),
    ],
)
def test_a_changed_or_stale_delivery_fails(change, message):
    # The time is taken when the test runs, not when the parameters were collected.
    shift = change.get("shift")
    headers = signed(at=datetime.now(UTC) + shift if shift is not None else None)
    for name, value in change.get("headers", {}).items():
        headers.pop(name)
        if value is not None:
            headers[name] = value
    with pytest.raises(WebhookVerificationError, match=message) as raised:
        webhooks.verify(change.get("body", BODY), headers, change.get("secret", SECRET))
    assert isinstance(raised.value, WaitpointError)


def test_a_signed_body_that_is_not_an_event_fails():
    body = b'{"hello": "world"}'
    with pytest.raises(WebhookVerificationError, match="not a Waitpoint event"):
        webhooks.verify(body, signed(body), SECRET)


def test_sign_writes_the_headers_verify_accepts():
    at = datetime.now(UTC)
    headers = webhooks.sign(BODY, SECRET, "msg_1", at)
    assert headers["webhook-signature"].startswith("v1,")
    assert webhooks.verify(BODY, headers, SECRET).id == "msg_1"


# The README's receiver ------------------------------------------------------------------


def readme_receiver() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- webhook-receiver -->\s*```python\n(.*?)```", readme, re.S)
    assert found, "the README's receiver block is marked <!-- webhook-receiver -->"
    return found.group(1)


@pytest.fixture
def receiver(monkeypatch):
    """examples/webhook_receiver.py, imported as a user would run it."""
    monkeypatch.setenv("WAITPOINT_WEBHOOK_SECRET", SECRET)
    path = ROOT / "examples" / "webhook_receiver.py"
    spec = importlib.util.spec_from_file_location("webhook_receiver", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


def test_the_readme_receiver_is_the_example_file_and_about_15_lines():
    code = readme_receiver()
    assert code in (ROOT / "examples" / "webhook_receiver.py").read_text()
    assert len(code.strip().splitlines()) <= 20


def test_the_readme_receiver_accepts_a_signed_delivery_and_refuses_a_tampered_one(receiver, capsys):
    client = receiver.test_client()
    ok = client.post("/waitpoint-events", data=BODY, headers=signed())
    assert ok.status_code == 204
    assert 'decided: waitpoint_abc {"ok":true}' in capsys.readouterr().out
    tampered = client.post("/waitpoint-events", data=BODY + b" ", headers=signed())
    assert tampered.status_code == 400


def test_the_readme_receiver_verifies_what_the_sender_sends(app_factory, api_key, receiver, capsys):
    """Waitpoint's own sender (deliver_due) to the receiver on a real socket."""
    server = make_server("127.0.0.1", 0, receiver, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        app = app_factory(WAITPOINT_WEBHOOK_ALLOW_PRIVATE=("127.0.0.1/32",))
        url = f"http://127.0.0.1:{server.server_port}/waitpoint-events"
        with app.app_context():
            endpoint, secret = domain_webhooks.create_endpoint(1, url, [], utcnow())
            endpoint.secret = SECRET  # the receiver's
            db.session.commit()
        client = app.test_client()
        headers = {"Authorization": f"Bearer {api_key}"}
        token = client.post("/api/v1/waitpoints/tokens", json={}, headers=headers).get_json()
        path = f"/api/v1/waitpoints/tokens/{token['id']}/complete"
        client.post(path, json={"data": {"refund": 240}}, headers=headers)
        with app.app_context():
            assert deliver_due() == 2
            statuses = db.session.execute(db.select(Delivery.status)).scalars().all()
        assert statuses == ["delivered", "delivered"]
        out = capsys.readouterr().out
        assert f'decided: {token["id"]} {{"refund":240}}' in out
    finally:
        server.shutdown()
        thread.join()
