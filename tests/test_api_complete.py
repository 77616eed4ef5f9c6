"""Completing tokens: with an API key, and through the callback URL."""

import json
from datetime import timedelta

import pytest

from app.domain import lifecycle, stored
from app.domain.timeutil import utcnow

from .support import TOKENS, callback_path, error_of


def complete(api, token_id, **body):
    return api.post(f"{TOKENS}/{token_id}/complete", json=body)


def test_it_completes_with_the_data_as_output(api):
    token = api.create()
    response = complete(api, token["id"], data={"approved": True, "note": "ünïcode"})
    assert response.get_json() == {"success": True, "applied": True, "status": "COMPLETED"}
    done = api.retrieve(token["id"])
    assert done["status"] == "COMPLETED"
    assert json.loads(done["output"]) == {"approved": True, "note": "ünïcode"}
    assert done["outputType"] == "application/json"
    assert done["outputIsError"] is False
    assert done["completedAt"] >= done["createdAt"]


@pytest.mark.parametrize("data", [0, "", [], False, None, "text", [1, {"a": None}]])
def test_any_json_value_is_an_output(api, data):
    token = api.create()
    complete(api, token["id"], data=data)
    assert json.loads(api.retrieve(token["id"])["output"]) == data


def test_without_data_there_is_no_output(api):
    token = api.create()
    assert complete(api, token["id"]).get_json()["applied"] is True
    done = api.retrieve(token["id"])
    assert done["status"] == "COMPLETED"
    assert "output" not in done and "outputIsError" not in done


def test_the_first_completion_wins_and_later_ones_say_so(api):
    token = api.create()
    complete(api, token["id"], data="first")
    second = complete(api, token["id"], data="second").get_json()
    assert second == {"success": True, "applied": False, "status": "COMPLETED"}
    assert json.loads(api.retrieve(token["id"])["output"]) == "first"


def test_a_timed_out_token_cannot_be_completed(app, api):
    token = api.create(timeout="1h")
    with app.app_context():
        lifecycle.expire_due(utcnow() + timedelta(hours=2))
    response = complete(api, token["id"], data=1).get_json()
    assert response == {"success": True, "applied": False, "status": "TIMED_OUT"}
    assert api.retrieve(token["id"])["outputIsError"] is True


def test_a_completion_past_the_deadline_times_the_token_out_before_the_sweep(app, api):
    token = api.create(timeout="1h")
    with app.app_context():
        pk = stored.find_token(token["id"]).pk
        applied = lifecycle.complete_token(
            pk, "1", lifecycle.CompletionRecord(source="api"), utcnow() + timedelta(hours=1)
        )
        assert applied is False
        row = stored.token_by_pk(pk)
        # Stored at once, as the sweep would: whoever this caller tells has been told
        # what nobody can change any more.
        assert row.status == "TIMED_OUT"


def test_unknown_and_foreign_tokens_are_404(api, other_api):
    mine = api.create()
    assert error_of(complete(other_api, mine["id"], data=1), 404) == "token: not found"
    assert error_of(complete(api, "waitpoint_doesnotexist", data=1), 404) == "token: not found"
    assert error_of(complete(api, "nope", data=1), 404) == "token: not found"
    assert api.retrieve(mine["id"])["status"] == "WAITING"


def test_unknown_fields_in_a_completion_are_refused(api):
    token = api.create()
    message = error_of(complete(api, token["id"], approved=True), 400)
    assert message.startswith("approved:")
    assert api.retrieve(token["id"])["status"] == "WAITING"


def test_a_completion_over_the_limit_is_413(api):
    token = api.create()
    body = json.dumps({"data": "x" * (1024 * 1024)})
    response = api.post(
        f"{TOKENS}/{token['id']}/complete", data=body, content_type="application/json"
    )
    error_of(response, 413)
    assert api.retrieve(token["id"])["status"] == "WAITING"


def test_the_callback_url_completes_without_an_api_key(api, client):
    token = api.create()
    response = client.post(callback_path(token), json={"approved": True})
    assert response.get_json() == {"success": True, "applied": True, "status": "COMPLETED"}
    assert json.loads(api.retrieve(token["id"])["output"]) == {"approved": True}


@pytest.mark.parametrize("body", [b"", b"not json {", b"\xff\xfe"])
def test_an_empty_or_non_json_callback_body_is_an_empty_object(api, client, body):
    token = api.create()
    client.post(callback_path(token), data=body, content_type="text/plain")
    assert json.loads(api.retrieve(token["id"])["output"]) == {}


def test_a_callback_on_a_decided_token_changes_nothing(api, client):
    token = api.create()
    client.post(callback_path(token), json={"n": 1})
    again = client.post(callback_path(token), json={"n": 2}).get_json()
    assert again == {"success": True, "applied": False, "status": "COMPLETED"}
    assert json.loads(api.retrieve(token["id"])["output"]) == {"n": 1}


def test_a_wrong_hash_and_an_unknown_id_get_the_same_404(api, client):
    token = api.create()
    path = callback_path(token)
    tampered = path[:-1] + ("0" if path[-1] != "0" else "1")
    other_id = path.replace(token["id"], "waitpoint_" + "a" * 25)
    answers = [client.post(p, json={}) for p in (tampered, other_id, path + "x")]
    assert {r.status_code for r in answers} == {404}
    assert len({r.get_data() for r in answers}) == 1
    assert api.retrieve(token["id"])["status"] == "WAITING"


def test_a_signature_for_one_token_does_not_open_another(api, client):
    first, second = api.create(), api.create()
    signature = callback_path(first).rsplit("/", 1)[1]
    response = client.post(f"{TOKENS}/{second['id']}/callback/{signature}", json={})
    assert response.status_code == 404


def test_the_callback_records_who_completed(app, api, client):
    token = api.create()
    client.post(
        callback_path(token),
        json={},
        headers={"User-Agent": "approver-bot/1.0"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    with app.app_context():
        record = stored.find_token(token["id"]).completion
        assert (record.source, record.ip, record.user_agent) == (
            "callback",
            "203.0.113.9",
            "approver-bot/1.0",
        )


def test_a_callback_body_over_the_limit_is_413(api, client):
    token = api.create()
    response = client.post(
        callback_path(token), data=b"[" + b"1," * 600_000 + b"1]", content_type="application/json"
    )
    error_of(response, 413)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"data": 1e400}', "out of range"),
        ('{"data": "\\ud800"}', "unpaired surrogate"),
        ('{"data": ' + "[" * 2000 + "]" * 2000 + "}", "nested deeper"),
        ('{"data": NaN}', "NaN is not JSON"),
    ],
)
def test_outputs_that_cannot_be_stored_are_refused(api, client, body, reason):
    token = api.create()
    response = api.post(
        f"{TOKENS}/{token['id']}/complete", data=body, content_type="application/json"
    )
    assert reason in error_of(response, 400)
    assert api.retrieve(token["id"])["status"] == "WAITING"
    # The callback URL takes any body: what is not storable JSON counts as {}.
    assert client.post(callback_path(token), data=body).get_json()["applied"] is True
    assert json.loads(api.retrieve(token["id"])["output"]) == {}
