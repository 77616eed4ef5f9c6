"""The SDK with response forms, against a live server: create with a form, labels and a
timeout output, answer the form on the approval page as a person would (GET the page,
read its CSRF token, POST the fields), and read the answers from the wait."""

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin

import httpx
import pytest
from flask import Flask

from app.domain.capability import approver_path
from waitpoint import (
    Approval,
    AsyncWaitpoint,
    ValidationError,
    Waitpoint,
    WaitpointTimeoutError,
)
from waitpoint import _common as c

from .support import SECRET, server_on_new_database

pytestmark = pytest.mark.slow

ADA = "ada@example.com"
BOB = "bob@example.com"
DRAFT = "Dear Ada,\n\nYour refund of EUR 240 is on its way.\n\nBest,\nthe agent"
EDITED = "Dear Ada,\n\nYour refund of EUR 200 is on its way.\n\nKind regards,\nSupport"
# A property of each kind, in this order: the page names their fields response_0..4.
FORM = {
    "type": "object",
    "properties": {
        "body": {"type": "string", "title": "Email", "x-multiline": True, "default": DRAFT},
        "amount": {"type": "number", "title": "Refund (EUR)", "minimum": 0},
        "copies": {"type": "integer", "minimum": 1},
        "urgent": {"type": "boolean", "default": False},
        "tone": {"type": "string", "enum": ["formal", "friendly"]},
    },
    "required": ["body", "amount"],
}
ANSWERS = {"body": EDITED, "amount": "200.5", "copies": "3", "urgent": "y", "tone": "friendly"}
RESPONSE = {"body": EDITED, "amount": 200.5, "copies": 3, "urgent": True, "tone": "friendly"}
NO_TIME = {"approved": False, "comment": "nobody answered in time"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A live server that may take named approvers: it keeps their mail in its mailbox."""
    tmp = tmp_path_factory.mktemp("sdk-forms")
    with server_on_new_database(tmp, WAITPOINT_LOCAL_MAILBOX="on") as live:
        yield live


@pytest.fixture(scope="module")
def key(server):
    return server.new_key("forms")


@pytest.fixture(scope="module")
def sdk(server, key):
    with Waitpoint(server.url, key) as client:
        yield client


def fields(page: str, answers: dict, button: dict, comment: str) -> dict:
    """What the page's form posts: its CSRF token, a ``response_<i>`` per answered
    property (in the form's order; an unchecked box is not sent), a button, the comment."""
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    names = list(FORM["properties"])
    filled = {f"response_{names.index(name)}": value for name, value in answers.items()}
    return {"csrf_token": csrf, "comment": comment, **filled, **button}


def action_of(page_url: str, page: str) -> str:
    action = re.search(r'<form class="decision" method="post" action="([^"]+)"', page).group(1)
    return urljoin(page_url, action)


def answer(page_url: str, answers: dict, *, approve=True, label=None, comment="") -> str:
    """What a person does: open the page, fill in the form, press a button. The page."""
    button = {"approve": label or "Approve"} if approve else {"reject": label or "Reject"}
    with httpx.Client() as browser:
        page = browser.get(page_url)
        assert page.status_code == 200
        data = fields(page.text, answers, button, comment)
        sent = browser.post(action_of(page_url, page.text), data=data)
        assert sent.status_code == 303, sent.text
        return page.text


async def answer_async(page_url: str, answers: dict, *, approve=True, comment="") -> None:
    button = {"approve": "Approve"} if approve else {"reject": "Reject"}
    async with httpx.AsyncClient() as browser:
        page = await browser.get(page_url)
        data = fields(page.text, answers, button, comment)
        sent = await browser.post(action_of(page_url, page.text), data=data)
        assert sent.status_code == 303, sent.text


def personal_link(server, token_id: str, position: int) -> str:
    """The n-th approver's link, signed as the server signs it (same SECRET_KEY)."""
    signer = Flask(__name__)
    signer.config["SECRET_KEY"] = SECRET
    with signer.app_context():
        return server.url + approver_path(token_id, position)


def run_async(scenario):
    # In a thread of its own: Playwright's sync API keeps an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, scenario).result()


def test_the_form_fields_go_out_under_their_wire_names_only_when_given():
    assert c.create_body(timeout="1h") == {"timeout": "1h"}
    body = c.create_body(form=FORM, approve_label="Send it", reject_label="Drop it")
    assert body == {"form": FORM, "approveLabel": "Send it", "rejectLabel": "Drop it"}
    assert c.create_body(timeout_output=NO_TIME) == {"timeoutOutput": NO_TIME}
    # None is a timeout output of its own (JSON null), unlike leaving it out.
    assert c.create_body(timeout_output=None) == {"timeoutOutput": None}
    assert c.create_body(timeout_output=0) == {"timeoutOutput": 0}


def test_a_retrieved_token_shows_its_form_labels_and_timeout_output(sdk):
    token = sdk.create_token(
        timeout="1h",
        form=FORM,
        approve_label="Send it",
        reject_label="Drop it",
        timeout_output=NO_TIME,
    )
    got = sdk.retrieve_token(token)
    assert got.form == FORM
    assert (got.approve_label, got.reject_label) == ("Send it", "Drop it")
    assert got.timeout_output == NO_TIME and got.has_timeout_output is True
    assert got.response is None and got.timed_out is False
    page = httpx.get(token.url).text
    assert 'value="Send it"' in page and 'value="Drop it"' in page


def test_an_approval_returns_the_answers_typed_as_the_form_says(sdk):
    token = sdk.create_token(timeout="1h", form=FORM, approve_label="Send it")
    page = answer(token.url, ANSWERS, label="Send it", comment="tone it down")
    assert "EUR 240 is on its way" in page  # the draft is filled in for the approver to edit

    result = sdk.for_token(token)
    assert result.ok is True and result.timed_out is False
    assert result.response == RESPONSE
    assert type(result.response["amount"]) is float and type(result.response["copies"]) is int
    assert result.response["urgent"] is True
    assert result.output == {
        "approved": True,
        "response": RESPONSE,
        "comment": "tone it down",
        "approver": None,
    }
    assert result.unwrap()["response"] == RESPONSE
    assert result.token.decision.response == RESPONSE
    assert sdk.retrieve_token(token).response == RESPONSE


def test_a_rejection_has_no_response(sdk):
    token = sdk.create_token(timeout="1h", form=FORM)
    answer(token.url, {}, approve=False, comment="not this one")  # no answers needed
    result = sdk.for_token(token)
    assert result.ok is True and result.output["approved"] is False
    assert "response" not in result.output
    assert result.response is None and result.token.decision.response is None
    assert result.output["comment"] == "not this one"


def test_a_timed_out_token_gives_its_timeout_output(sdk):
    token = sdk.create_token(timeout="1s", form=FORM, timeout_output=NO_TIME)
    result = sdk.for_token(token, deadline=30)
    assert result.timed_out is True and result.ok is False
    assert result.output == NO_TIME
    assert isinstance(result.error, WaitpointTimeoutError)
    assert str(result.error).startswith("Waitpoint timed out at ")
    assert result.unwrap() == NO_TIME  # the output the token was created to give
    assert result.response is None
    assert result.token.timeout_output == NO_TIME


def test_a_null_timeout_output_is_returned_and_none_at_all_still_raises(sdk):
    null = sdk.create_token(timeout="1s", timeout_output=None)
    plain = sdk.create_token(timeout="1s")
    with_null = sdk.for_token(null, deadline=30)
    assert with_null.timed_out is True and with_null.output is None
    assert with_null.token.has_timeout_output is True
    assert with_null.unwrap() is None
    without = sdk.for_token(plain, deadline=30)
    assert without.timed_out is True and without.output is None
    assert without.token.has_timeout_output is False and without.token.timeout_output is None
    with pytest.raises(WaitpointTimeoutError):
        without.unwrap()


def test_each_named_approvers_answers_are_in_their_approval(sdk, server):
    token = sdk.create_token(timeout="1h", form=FORM, approvers=[ADA, BOB], required_approvals=2)
    answer(personal_link(server, token.id, 1), {"body": "Ada's", "amount": "1"})
    halfway = sdk.retrieve_token(token)
    assert halfway.approvers[0].response == {"body": "Ada's", "amount": 1, "urgent": False}
    assert halfway.approvers[1].response is None

    answer(personal_link(server, token.id, 2), ANSWERS, comment="sent")
    result = sdk.for_token(token)
    assert result.response == RESPONSE  # the deciding approval's
    assert result.output["response"] == RESPONSE
    first, second = result.approvals
    assert first == Approval(
        approver=ADA,
        name=None,
        comment="",
        decided_at=first.decided_at,
        response={"body": "Ada's", "amount": 1, "urgent": False},
    )
    assert (second.approver, second.response) == (BOB, RESPONSE)
    assert [a.response for a in result.token.approvers] == [first.response, RESPONSE]


def test_a_bad_form_raises_the_server_message_naming_its_path(sdk):
    bad = {"type": "object", "properties": {"a": {"type": "array"}}}
    with pytest.raises(ValidationError) as refused:
        sdk.create_token(form=bad)
    assert refused.value.status == 400
    assert refused.value.message.startswith("form.properties.a.type: ")
    with pytest.raises(ValidationError, match="approveLabel"):
        sdk.create_token(form=FORM, approve_label="x" * 41)


def test_tokens_without_a_form_read_as_before(sdk):
    token = sdk.create_token(timeout="1h")
    sdk.complete_token(token, {"approved": True, "response": {"made": "up"}})
    result = sdk.for_token(token)
    assert result.ok is True and result.response is None  # an API completion: no decision
    got = result.token
    assert (got.form, got.approve_label, got.reject_label) == (None, None, None)
    assert got.timeout_output is None and got.has_timeout_output is False
    listed = next(t for t in sdk.list_tokens() if t.id == token.id)
    assert listed.form is None and listed.response is None


def test_the_async_client_creates_answers_and_times_out_with_a_form(server, key):
    async def scenario():
        async with AsyncWaitpoint(server.url, key) as client:
            token = await client.create_token(
                timeout="1h", form=FORM, approve_label="Send it", reject_label="Drop it"
            )
            got = await client.retrieve_token(token)
            assert got.form == FORM
            assert (got.approve_label, got.reject_label) == ("Send it", "Drop it")

            waiter = asyncio.create_task(client.for_token(token))
            answers = {"body": EDITED, "amount": "0", "copies": "2", "tone": "formal"}
            await answer_async(token.url, answers)
            result = await asyncio.wait_for(waiter, 10)
            # An unchecked box is false; an integer amount stays an integer.
            assert result.response == {
                "body": EDITED,
                "amount": 0,
                "copies": 2,
                "urgent": False,
                "tone": "formal",
            }
            assert result.response["urgent"] is False and type(result.response["amount"]) is int

            rejected = await client.create_token(timeout="1h", form=FORM)
            await answer_async(rejected.url, {}, approve=False)
            result = await client.for_token(rejected)
            assert result.output["approved"] is False and result.response is None

            late = await client.create_token(timeout="1s", timeout_output=NO_TIME)
            result = await client.for_token(late, deadline=30)
            assert result.timed_out is True and result.ok is False
            assert result.output == NO_TIME and result.unwrap() == NO_TIME
            assert isinstance(result.error, WaitpointTimeoutError)

            with pytest.raises(ValidationError, match=r"form\.properties\.a\.type"):
                await client.create_token(
                    form={"type": "object", "properties": {"a": {"type": "array"}}}
                )

    run_async(scenario())
