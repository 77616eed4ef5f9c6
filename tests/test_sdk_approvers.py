"""The SDK with named approvers, against a live server: create with approvers, see them
on the retrieved token, vote through their personal links, read the votes from the wait."""

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from flask import Flask

from app.domain.capability import approver_path
from waitpoint import (
    Approval,
    Approver,
    ApproverState,
    AsyncWaitpoint,
    ValidationError,
    Waitpoint,
)
from waitpoint import _common as c

from .support import SECRET, server_on_new_database

pytestmark = pytest.mark.slow

ADA = "ada@example.com"
BOB = "bob@example.com"
CY = "cy@example.com"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A live server that may take named approvers: it keeps their mail in its mailbox."""
    tmp = tmp_path_factory.mktemp("approvers")
    with server_on_new_database(tmp, WAITPOINT_LOCAL_MAILBOX="on") as live:
        yield live


@pytest.fixture(scope="module")
def key(server):
    return server.new_key("approvers")


@pytest.fixture(scope="module")
def sdk(server, key):
    with Waitpoint(server.url, key) as client:
        yield client


def personal_link(server, token_id: str, position: int) -> str:
    """The n-th approver's link, signed as the server signs it (same SECRET_KEY)."""
    signer = Flask(__name__)
    signer.config["SECRET_KEY"] = SECRET
    with signer.app_context():
        return server.url + approver_path(token_id, position)


def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def vote_form(html: str, approve: bool, comment: str) -> dict:
    button = {"approve": "Approve"} if approve else {"reject": "Reject"}
    return {"csrf_token": csrf_from(html), "comment": comment, **button}


def vote(server, token_id: str, position: int, approve: bool, comment: str = "") -> None:
    """What an approver does: open their link, press Approve or Reject."""
    link = personal_link(server, token_id, position)
    with httpx.Client() as browser:
        page = browser.get(link)
        assert page.status_code == 200
        sent = browser.post(link, data=vote_form(page.text, approve, comment))
        assert sent.status_code == 303, sent.text


async def vote_async(server, token_id: str, position: int, approve: bool, comment="") -> None:
    link = personal_link(server, token_id, position)
    async with httpx.AsyncClient() as browser:
        page = await browser.get(link)
        sent = await browser.post(link, data=vote_form(page.text, approve, comment))
        assert sent.status_code == 303, sent.text


def run_async(scenario):
    # In a thread of its own: Playwright's sync API keeps an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, scenario).result()


def test_the_approver_fields_go_out_under_their_wire_names_only_when_given():
    assert c.create_body(timeout="1h", title="Refund?") == {"timeout": "1h", "title": "Refund?"}
    body = c.create_body(
        approvers=[Approver(ADA, "Ada"), {"email": BOB}, CY],
        required_approvals=2,
        requested_by="req@example.com",
        reminders=[timedelta(hours=4), "1d", 90],
    )
    assert body == {
        "approvers": [{"email": ADA, "name": "Ada"}, {"email": BOB}, {"email": CY}],
        "requiredApprovals": 2,
        "requestedBy": "req@example.com",
        "reminders": ["14400s", "1d", "90s"],
    }
    assert c.create_body(approvers=[ADA], reminders="4h")["reminders"] == ["4h"]
    assert c.list_params(approver=ADA)["filter[approver]"] == ADA
    assert "filter[approver]" not in c.list_params()


def test_a_retrieved_token_shows_its_approvers_and_who_asked(sdk):
    token = sdk.create_token(
        timeout="1d",
        title="Deploy?",
        approvers=[Approver(ADA, "Ada"), {"email": "Bob@Example.com"}, CY],
        required_approvals=2,
        requested_by=CY,
        reminders=["1h", timedelta(hours=2)],
    )
    got = sdk.retrieve_token(token)
    assert got.status == "WAITING" and got.title == "Deploy?"
    assert got.required_approvals == 2 and got.requested_by == CY
    assert got.approvers == [
        ApproverState(email=ADA, name="Ada"),
        ApproverState(email=BOB),  # kept in lower case by the server
        ApproverState(email=CY),
    ]
    assert got.approvals == [] and got.rejected_by is None


def test_for_token_returns_the_approvals_once_enough_approvers_approve(sdk, server):
    token = sdk.create_token(
        timeout="1h", approvers=[Approver(ADA, "Ada"), Approver(BOB)], required_approvals=2
    )
    box = {}
    waiter = threading.Thread(target=lambda: box.update(result=sdk.for_token(token)))
    waiter.start()

    vote(server, token.id, 1, approve=True, comment="fine by me")
    halfway = sdk.retrieve_token(token)
    assert halfway.status == "WAITING"
    ada, bob = halfway.approvers
    assert (ada.decision, ada.comment, bob.decision) == ("approved", "fine by me", None)
    assert ada.decided_at is not None and bob.decided_at is None
    assert token.id not in {t.id for t in sdk.list_tokens(approver=ADA)}
    assert token.id in {t.id for t in sdk.list_tokens(approver=BOB)}

    vote(server, token.id, 2, approve=True)
    waiter.join(10)
    result = box["result"]
    assert result.ok is True and result.output["approved"] is True
    assert result.output["approver"] == BOB
    assert result.approvals == [
        Approval(approver=ADA, name="Ada", comment="fine by me", decided_at=ada.decided_at),
        Approval(approver=BOB, name=None, comment="", decided_at=result.approvals[1].decided_at),
    ]
    assert result.rejected_by is None
    assert [a.decision for a in result.token.approvers] == ["approved", "approved"]
    assert token.id not in {t.id for t in sdk.list_tokens(approver=BOB)}


def test_one_rejection_decides_and_names_who_rejected_from_the_async_client(server, key):
    async def scenario():
        async with AsyncWaitpoint(server.url, key) as client:
            token = await client.create_token(
                timeout="1h",
                approvers=[{"email": ADA, "name": "Ada"}, BOB, CY],
                required_approvals=2,
            )
            got = await client.retrieve_token(token)
            assert [a.email for a in got.approvers] == [ADA, BOB, CY]
            waiting_on_bob = [t.id async for t in client.list_tokens(approver=BOB)]
            assert token.id in waiting_on_bob

            waiter = asyncio.create_task(client.for_token(token))
            await vote_async(server, token.id, 1, approve=True, comment="yes")
            await vote_async(server, token.id, 2, approve=False, comment="not today")
            result = await asyncio.wait_for(waiter, 10)
            assert result.ok is True and result.output["approved"] is False
            assert result.output["comment"] == "not today"
            assert result.rejected_by == BOB
            assert [(a.approver, a.name, a.comment) for a in result.approvals] == [
                (ADA, "Ada", "yes")
            ]
            decisions = [a.decision for a in result.token.approvers]
            assert decisions == ["approved", "rejected", None]

    run_async(scenario())


def test_bad_approver_input_raises_the_server_message(sdk, server, key):
    with pytest.raises(ValidationError) as too_many:
        sdk.create_token(approvers=[ADA, BOB], required_approvals=3)
    assert too_many.value.status == 400
    assert too_many.value.message == (
        "requiredApprovals: must be at most the number of approvers (2)"
    )
    with pytest.raises(ValidationError, match="reminders: needs approvers"):
        sdk.create_token(reminders=["1h"])
    with pytest.raises(ValidationError, match="requestedBy: ada@example.com cannot approve"):
        sdk.create_token(approvers=[ADA], requested_by=ADA)
    with pytest.raises(ValidationError, match="approvers"):
        sdk.create_token(approvers=["not-an-address"])

    async def scenario():
        async with AsyncWaitpoint(server.url, key) as client:
            with pytest.raises(ValidationError, match="reminders: each reminder must come"):
                await client.create_token(timeout="1h", approvers=[ADA], reminders=["2h"])

    run_async(scenario())


def test_tokens_without_approvers_are_read_as_before(sdk):
    token = sdk.create_token(timeout="1h")
    sdk.complete_token(token, {"approvals": [{"approver": ADA, "decidedAt": "x"}]})
    plain = sdk.for_token(token)
    assert plain.output == {"approvals": [{"approver": ADA, "decidedAt": "x"}]}
    assert plain.approvals == [] and plain.rejected_by is None
    assert plain.token.approvers == [] and plain.token.required_approvals is None
    assert plain.token.requested_by is None


def test_an_api_completion_of_a_token_with_approvers_reads_without_votes(sdk):
    token = sdk.create_token(approvers=[ADA])
    assert sdk.complete_token(token, "overridden").applied is True
    result = sdk.for_token(token)
    assert result.output == "overridden"
    assert result.approvals == [] and result.rejected_by is None
    assert result.token.approvers == [ApproverState(email=ADA)]
