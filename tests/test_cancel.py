"""Withdrawing a token (POST .../cancel, a Waitpoint extension): COMPLETED with an error
output, once; the page says withdrawn; approvers who had not answered are told."""

import json

from sqlalchemy import select

from app.extensions import db
from app.models import MailMessage

from .support import ADA, TOKENS, callback_path, error_of, vote


def cancel(api, token, **body):
    return api.post(f"{TOKENS}/{token['id']}/cancel", json=body)


def test_cancel_ends_a_waiting_token_with_an_error_output(api):
    token = api.create(title="Deploy?")
    answer = cancel(api, token, reason="the deploy was rolled back")
    assert answer.get_json() == {"success": True, "applied": True, "status": "COMPLETED"}
    item = api.retrieve(token["id"])
    assert item["status"] == "COMPLETED"
    assert item["outputIsError"] is True
    assert json.loads(item["output"]) == {
        "code": "WAITPOINT_CANCELLED",
        "message": "Withdrawn: the deploy was rolled back",
    }
    assert "decision" not in item


def test_cancel_without_a_reason_and_twice(api):
    token = api.create()
    assert cancel(api, token).get_json()["applied"] is True
    assert cancel(api, token).get_json() == {
        "success": True,
        "applied": False,
        "status": "COMPLETED",
    }
    assert json.loads(api.retrieve(token["id"])["output"])["message"] == "The request was withdrawn"


def test_a_decided_token_cannot_be_cancelled(api, client):
    token = api.create()
    client.post(callback_path(token), json={"approved": True})
    assert cancel(api, token).get_json()["applied"] is False
    assert api.retrieve(token["id"])["outputIsError"] is False


def test_cancel_needs_the_tokens_own_project(api, other_api):
    token = api.create()
    assert error_of(cancel(other_api, token), 404) == "token: not found"
    assert error_of(cancel(api, token, why="x"), 400) == "why: is not a known field"
    assert error_of(cancel(api, token, reason=""), 400).startswith("reason: String should")
    assert api.retrieve(token["id"])["status"] == "WAITING"


def test_the_page_says_withdrawn(api, client):
    token = api.create(title="Deploy?")
    cancel(api, token, reason="not needed")
    page = client.get(callback_path(token)).get_data(as_text=True)
    assert "Withdrawn by whoever asked" in page and "not needed" in page
    assert 'name="approve"' not in page


def test_approvers_who_had_not_answered_get_the_note_and_cannot_vote(api, client, app):
    token = api.create(title="Budget", approvers=[ADA])
    cancel(api, token)
    with app.app_context():
        kinds = db.session.execute(select(MailMessage.kind).order_by(MailMessage.id)).scalars()
        assert list(kinds) == ["request", "closed"]
    page = client.get(vote(client, app, token, 1).headers["Location"]).get_data(as_text=True)
    assert "already been decided" in page
