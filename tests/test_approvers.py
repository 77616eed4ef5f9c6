"""Named approvers: what a create accepts, how votes decide a token, and who may vote.

In process, on the test database (SQLite, or PostgreSQL in CI). Votes go through the
personal pages' forms as an approver's browser would post them (CSRF is off here;
tests/test_approval_pages.py covers it on the same forms).
"""

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.domain import lifecycle
from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import MailMessage, TokenApprover

from .support import (
    ADA,
    BOB,
    CAROL,
    TOKENS,
    callback_path,
    decide_path,
    error_of,
    personal_path,
    vote,
)


def output_of(api, token) -> dict:
    return json.loads(api.retrieve(token["id"])["output"])


# -- what a create accepts ---------------------------------------------------------

INVALID = [
    ({"approvers": []}, "approvers: List should have at least 1 item"),
    ({"approvers": [{"email": f"a{i}@example.com"} for i in range(21)]}, "approvers: List"),
    ({"approvers": [{"email": "not-an-address"}]}, "approvers[0].email: not a valid email"),
    ({"approvers": [ADA, {"email": "b@@x"}]}, "approvers[1].email: not a valid email"),
    ({"approvers": [{"email": "a@example.com", "name": "x" * 101}]}, "approvers[0].name:"),
    ({"approvers": [{"email": "a@example.com", "role": "boss"}]}, "approvers[0].role: is not a"),
    ({"approvers": [ADA], "requiredApprovals": 2}, "requiredApprovals: must be at most the number"),
    ({"approvers": [ADA], "requiredApprovals": 0}, "requiredApprovals: Input should be greater"),
    ({"approvers": [ADA], "requiredApprovals": "1"}, "requiredApprovals: Input should be a valid"),
    ({"requiredApprovals": 1}, "requiredApprovals: needs approvers"),
    ({"reminders": ["1h"]}, "reminders: needs approvers"),
    ({"approvers": [ADA], "reminders": ["1h"] * 6}, "reminders: List should have at most 5"),
    ({"approvers": [ADA], "reminders": ["0s"]}, "reminders: each reminder must be longer"),
    ({"approvers": [ADA], "reminders": ["soon"]}, "reminders:"),
    (
        {"approvers": [ADA], "reminders": ["2h"], "timeout": "1h"},
        "reminders: each reminder must come before the timeout",
    ),
    ({"approvers": [ADA], "requestedBy": "ada@example.com"}, "requestedBy: ada@example.com cannot"),
    (
        {"approvers": [ADA, BOB], "requiredApprovals": 2, "requestedBy": "BOB@example.com"},
        "requestedBy: bob@example.com cannot approve their own request",
    ),
    ({"requestedBy": "nobody"}, "requestedBy: not a valid email"),
]


@pytest.mark.parametrize(("body", "message"), INVALID, ids=[m for _, m in INVALID])
def test_a_create_with_bad_approvers_is_a_400_naming_the_field(api, body, message):
    assert error_of(api.post(TOKENS, json=body), 400).startswith(message)


def test_approvers_are_kept_in_order_in_lower_case_without_duplicates(api):
    token = api.create(
        approvers=[{"email": "Ada@Example.COM", "name": "Ada"}, BOB, {"email": "ada@example.com"}],
        requiredApprovals=2,
        requestedBy="Carol@Example.com",
    )
    item = api.retrieve(token["id"])
    assert item["approvers"] == [
        {"email": "ada@example.com", "name": "Ada", "decision": None},
        {"email": "bob@example.com", "name": "Bob", "decision": None},
    ]
    assert item["requiredApprovals"] == 2
    assert item["requestedBy"] == "carol@example.com"


def test_a_token_without_approvers_reads_as_before(api):
    item = api.retrieve(api.create(title="Deploy?")["id"])
    assert not {"approvers", "requiredApprovals", "requestedBy"} & set(item)


def test_the_requester_may_be_listed_if_enough_others_can_approve(api):
    token = api.create(approvers=[ADA, BOB], requestedBy="ada@example.com")
    assert api.retrieve(token["id"])["requiredApprovals"] == 1


def test_a_production_server_without_smtp_refuses_approvers_unless_the_mailbox_is_on(
    app_factory, database_url
):
    from app.cli import create_api_key

    from .support import Api

    for mailbox, expected in ((False, 400), (True, 200)):
        app = app_factory(WAITPOINT_LOCAL_MAILBOX=mailbox)
        with app.app_context():
            key = create_api_key("prod")
        response = Api(app.test_client(), key).post(TOKENS, json={"approvers": [ADA]})
        assert response.status_code == expected, response.get_json()
        if expected == 400:
            assert "WAITPOINT_SMTP_URL" in error_of(response, 400)


# -- how votes decide --------------------------------------------------------------


def test_two_of_three_completes_with_the_second_approval(api, client, app):
    token = api.create(approvers=[ADA, BOB, CAROL], requiredApprovals=2)
    assert vote(client, app, token, 1, comment="fine by me").status_code == 303
    item = api.retrieve(token["id"])
    assert item["status"] == "WAITING"
    assert [a["decision"] for a in item["approvers"]] == ["approved", None, None]
    assert item["approvers"][0]["comment"] == "fine by me"

    assert vote(client, app, token, 2).status_code == 303
    item = api.retrieve(token["id"])
    assert item["status"] == "COMPLETED"
    output = json.loads(item["output"])
    assert output["approved"] is True
    assert [(v["approver"], v.get("name"), v["comment"]) for v in output["approvals"]] == [
        ("ada@example.com", "Ada", "fine by me"),
        ("bob@example.com", "Bob", ""),
    ]
    assert output["approver"] == "bob@example.com"
    assert "rejectedBy" not in output
    assert item["decision"]["approver"] == "bob@example.com"
    assert [a["decision"] for a in item["approvers"]] == ["approved", "approved", None]


def test_one_rejection_rejects_at_once_and_a_later_approval_changes_nothing(api, client, app):
    token = api.create(approvers=[ADA, BOB, CAROL], requiredApprovals=2)
    vote(client, app, token, 1)
    vote(client, app, token, 2, approve=False, comment="too much")
    output = output_of(api, token)
    assert output["approved"] is False
    assert output["rejectedBy"] == "bob@example.com"
    assert output["comment"] == "too much"
    assert [v["approver"] for v in output["approvals"]] == ["ada@example.com"]

    late = vote(client, app, token, 3)
    assert late.status_code == 303
    page = client.get(late.headers["Location"]).get_data(as_text=True)
    assert "already been decided" in page
    assert output_of(api, token) == output
    assert api.retrieve(token["id"])["approvers"][2]["decision"] is None


def test_an_approver_votes_at_most_once(api, client, app):
    token = api.create(approvers=[ADA, BOB], requiredApprovals=2)
    vote(client, app, token, 1)
    again = vote(client, app, token, 1, approve=False)
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    assert "you have already answered" in page
    item = api.retrieve(token["id"])
    assert item["status"] == "WAITING"
    assert item["approvers"][0]["decision"] == "approved"


def test_the_requester_cannot_approve_but_can_reject(api, client, app):
    token = api.create(approvers=[ADA, BOB], requestedBy="ada@example.com")
    page = client.get(personal_path(app, token, 1)).get_data(as_text=True)
    assert "you cannot approve it" in page
    assert 'name="approve"' not in page and 'name="reject"' in page

    refused = vote(client, app, token, 1)
    assert refused.status_code == 409
    assert "You requested this, so you cannot approve it." in refused.get_data(as_text=True)
    assert api.retrieve(token["id"])["approvers"][0]["decision"] is None

    vote(client, app, token, 1, approve=False)
    assert output_of(api, token)["rejectedBy"] == "ada@example.com"


def test_a_vote_after_the_deadline_times_the_token_out_instead(api, app):
    token = api.create(approvers=[ADA], timeout="1h")
    with app.app_context():
        pk, approver_id = db.session.execute(select(TokenApprover.token_pk, TokenApprover.id)).one()
        outcome = lifecycle.vote(
            pk,
            approver_id,
            True,
            "",
            lifecycle.CompletionRecord(source="page"),
            now=utcnow() + timedelta(hours=2),
        )
    assert outcome.recorded is False
    item = api.retrieve(token["id"])
    assert item["status"] == "TIMED_OUT"
    assert item["approvers"][0]["decision"] is None


def test_an_operator_override_keeps_the_approvals_given_so_far(api, client, app):
    token = api.create(approvers=[ADA, BOB], requiredApprovals=2)
    vote(client, app, token, 1)
    with app.app_context():
        pk = db.session.execute(select(TokenApprover.token_pk)).scalars().first()
        record = lifecycle.CompletionRecord(source="dashboard", actor="op@example.com")
        assert lifecycle.decide_token(pk, False, "stop", record)
    output = output_of(api, token)
    assert output["approved"] is False
    assert [v["approver"] for v in output["approvals"]] == ["ada@example.com"]
    assert output["approver"] == "op@example.com"


# -- links: who may vote ------------------------------------------------------------


def test_get_never_votes(api, client, app):
    token = api.create(approvers=[ADA])
    for _ in range(3):
        page = client.get(personal_path(app, token, 1))
        assert page.status_code == 200
        assert "Approving as <strong>Ada &lt;ada@example.com&gt;</strong>" in page.get_data(
            as_text=True
        )
        assert client.get(personal_path(app, token, 1) + "/card").status_code == 204
    assert api.retrieve(token["id"])["status"] == "WAITING"


def test_a_tampered_personal_link_is_the_same_404_as_a_bad_callback_url(api, client, app):
    token = api.create(approvers=[ADA, BOB])
    good = personal_path(app, token, 1)
    prefix, signature = good.rsplit("/", 1)
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    other_position = good.replace(f"/{token['id']}/1/", f"/{token['id']}/2/")
    unknown_position = good.replace(f"/{token['id']}/1/", f"/{token['id']}/3/")
    real = callback_path(token)
    bad_callback = real[:-1] + ("0" if real[-1] != "0" else "1")  # never the real one
    expected = client.get(bad_callback)
    assert expected.status_code == 404
    for path in (prefix + "/" + flipped, other_position, unknown_position):
        for answer in (client.get(path), client.post(path, data={"approve": "Approve"})):
            assert answer.status_code == 404
            assert answer.get_data() == expected.get_data()
    assert [a["decision"] for a in api.retrieve(token["id"])["approvers"]] == [None, None]


def test_a_link_votes_only_as_the_approver_it_names(api, client, app):
    token = api.create(approvers=[ADA, BOB], requiredApprovals=2)
    vote(client, app, token, 2)
    assert [a["decision"] for a in api.retrieve(token["id"])["approvers"]] == [None, "approved"]


def test_another_tokens_link_cannot_vote_on_this_one(api, client, app):
    mine, other = api.create(approvers=[ADA]), api.create(approvers=[ADA])
    path = personal_path(app, other, 1).replace(other["id"], mine["id"])
    assert client.post(path, data={"approve": "Approve"}).status_code == 404
    assert api.retrieve(mine["id"])["status"] == "WAITING"


def test_the_callback_page_of_a_token_with_approvers_is_read_only(api, client, app):
    token = api.create(title="Refund", approvers=[ADA, BOB], requiredApprovals=2)
    vote(client, app, token, 1)
    page = client.get(callback_path(token)).get_data(as_text=True)
    assert "The named approvers decide this request" in page
    assert 'name="approve"' not in page
    assert "1 of 2 approvals" in page and "Ada" in page

    refused = client.post(decide_path(token), data={"approve": "Approve"})
    assert refused.status_code == 409
    assert api.retrieve(token["id"])["status"] == "WAITING"


def test_the_callback_url_still_completes_by_json_post(api, client):
    token = api.create(approvers=[ADA])
    answer = client.post(callback_path(token), json={"override": True})
    assert answer.get_json()["applied"] is True
    assert output_of(api, token) == {"override": True}


# -- filtering -----------------------------------------------------------------------


def test_the_list_filters_tokens_waiting_on_an_approver(api, client, app):
    both = api.create(approvers=[ADA, BOB], requiredApprovals=2)
    bob_only = api.create(approvers=[BOB])
    api.create(title="nobody named")

    def waiting_on(email):
        answer = api.get(TOKENS, query_string={"filter[approver]": email})
        assert answer.status_code == 200, answer.get_json()
        return [t["id"] for t in answer.get_json()["data"]]

    assert waiting_on("ada@example.com") == [both["id"]]
    assert waiting_on("BOB@example.com") == [bob_only["id"], both["id"]]
    vote(client, app, both, 2)
    assert waiting_on("bob@example.com") == [bob_only["id"]]
    message = error_of(api.get(TOKENS, query_string={"filter[approver]": "bob"}), 400)
    assert message.startswith("filter[approver]: not a valid email address")


# -- the outbox ----------------------------------------------------------------------


def test_create_enqueues_a_request_and_the_reminders_for_each_approver(api, app):
    api.create(approvers=[ADA, BOB], reminders=["1d", "4h"], timeout="2d")
    with app.app_context():
        mail = db.session.execute(
            select(MailMessage.kind, MailMessage.to_email, MailMessage.next_attempt_at).order_by(
                MailMessage.id
            )
        ).all()
    kinds = [(kind, to) for kind, to, _ in mail]
    assert kinds == [
        ("request", "ada@example.com"),
        ("request", "bob@example.com"),
        ("reminder", "ada@example.com"),
        ("reminder", "bob@example.com"),
        ("reminder", "ada@example.com"),
        ("reminder", "bob@example.com"),
    ]
    created = mail[0].next_attempt_at
    assert [m.next_attempt_at - created for m in mail[2:]] == [timedelta(hours=4)] * 2 + [
        timedelta(days=1)
    ] * 2


def test_the_card_htmx_swaps_in_after_a_vote_shows_the_token_as_it_now_stands(api, client, app):
    token = api.create(approvers=[ADA, BOB], requiredApprovals=2, timeout="1d")
    vote(client, app, token, 1)
    card = client.post(
        personal_path(app, token, 2), data={"approve": "Approve"}, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "your approval completed this request" in card
    assert "Approved" in card and "Times out" not in card and "waits for the other" not in card


def test_the_card_htmx_swaps_in_after_a_decision_shows_the_outcome(api, client):
    token = api.create(title="Deploy?")
    card = client.post(
        decide_path(token), data={"approve": "Approve"}, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "you approved this request" in card and 'class="outcome outcome-approved"' in card
