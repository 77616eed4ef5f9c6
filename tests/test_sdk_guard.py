"""``@require_approval`` against a live server: a guarded call creates a token, tells its
URL, waits, and runs the function only if a person approved it on the page (answered
here as a person would: GET the page, read its CSRF token, POST the form); rejected,
timed out or withdrawn, it raises and the function never runs. And ``list_tokens(limit=)``,
the TypeScript SDK's page size."""

import asyncio
import logging
import queue
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin

import httpx
import pytest

import waitpoint
from waitpoint import (
    ApprovalError,
    ApprovalRejected,
    ApprovalTimedOut,
    ApprovalWithdrawn,
    AsyncWaitpoint,
    Decision,
    Waitpoint,
    require_approval,
)
from waitpoint import _common as c

from .support import server_on_new_database

pytestmark = pytest.mark.slow

TOKENS = "/api/v1/waitpoints/tokens"
FORM = {
    "type": "object",
    "properties": {"amount": {"type": "number", "title": "Refund (EUR)", "minimum": 0}},
    "required": ["amount"],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with server_on_new_database(tmp_path_factory.mktemp("sdk-guard")) as live:
        yield live


@pytest.fixture(scope="module")
def key(server):
    return server.new_key("guard")


@pytest.fixture(scope="module")
def sdk(server, key):
    with Waitpoint(server.url, key) as client:
        yield client


def decide(url: str, *, approve=True, answers=None, approver="", comment="") -> None:
    """What a person does: open the page, fill in the form, press a button."""
    with httpx.Client() as browser:
        page = browser.get(url)
        assert page.status_code == 200
        data = form_data(page.text, answers, approve, approver, comment)
        sent = browser.post(action_of(url, page.text), data=data)
        assert sent.status_code == 303, sent.text


async def decide_async(url: str, *, approve=True, answers=None, comment="") -> None:
    async with httpx.AsyncClient() as browser:
        page = await browser.get(url)
        data = form_data(page.text, answers, approve, "", comment)
        sent = await browser.post(action_of(url, page.text), data=data)
        assert sent.status_code == 303, sent.text


def form_data(page: str, answers: dict | None, approve: bool, approver: str, comment: str):
    """The page's form: its CSRF token, ``response_<i>`` per answer (FORM's order), the
    approver's name, the comment, a button."""
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    names = list(FORM["properties"])
    filled = {f"response_{names.index(k)}": v for k, v in (answers or {}).items()}
    button = {"approve": "Approve"} if approve else {"reject": "Reject"}
    return {"csrf_token": csrf, "approver": approver, "comment": comment, **filled, **button}


def action_of(url: str, page: str) -> str:
    action = re.search(r'<form class="decision" method="post" action="([^"]+)"', page).group(1)
    return urljoin(url, action)


def token_id(url: str) -> str:
    return re.search(r"/tokens/([^/]+)/callback/", url).group(1)


def withdraw(server, key: str, url: str, reason: str) -> None:
    """Cancel the token through the API, as the agent's operator would."""
    sent = httpx.post(
        f"{server.url}{TOKENS}/{token_id(url)}/cancel",
        headers={"Authorization": f"Bearer {key}"},
        json={"reason": reason},
    )
    assert sent.json()["applied"] is True


def with_default(amount: float) -> dict:
    properties = {"amount": {**FORM["properties"]["amount"], "default": amount}}
    return {**FORM, "properties": properties}


class Told:
    """A ``notify`` that keeps each URL for the test to answer."""

    def __init__(self):
        self.urls: queue.Queue[str] = queue.Queue()

    def __call__(self, url: str) -> None:
        self.urls.put(url)

    def next(self) -> str:
        return self.urls.get(timeout=10)


def run_async(scenario):
    # In a thread of its own: Playwright's sync API keeps an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, scenario).result()


def test_an_approved_call_runs_with_the_approvers_answers(sdk):
    told, ran = Told(), []
    tag = f"run:{uuid.uuid4().hex[:8]}"

    @require_approval(
        title=lambda customer, amount, reason: f"Refund EUR {amount} to #{customer}?",
        description="The agent wants to refund a customer.",
        details=lambda customer, amount, reason: {"Customer": customer, "Reason": reason},
        tags=lambda customer, amount, reason: [tag, f"customer:{customer}"],
        timeout="1h",
        form=lambda customer, amount, reason: with_default(amount),
        notify=told,
        client=sdk,
    )
    def refund(customer: int, amount: float, reason: str, *, approval: Decision) -> str:
        ran.append((customer, approval.response["amount"]))
        return f"refunded {approval.response['amount']} ({approval.comment})"

    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(refund, 42, 240, reason="damaged parcel")
        url = told.next()
        assert ran == []  # nothing runs before the decision
        token = sdk.retrieve_token(token_id(url))
        assert token.status == "WAITING"
        assert token.title == "Refund EUR 240 to #42?"
        assert token.description == "The agent wants to refund a customer."
        assert token.details == {"Customer": 42, "Reason": "damaged parcel"}
        assert token.tags == [tag, "customer:42"]
        assert token.form == with_default(240)  # the page offers the asked amount
        # The approver edits the amount and says why.
        decide(url, answers={"amount": "200"}, approver="Ada", comment="half the shipping back")
        assert call.result(timeout=10) == "refunded 200 (half the shipping back)"
    assert ran == [(42, 200)]


def test_a_rejected_call_raises_and_never_runs(sdk):
    told, ran = Told(), []

    @require_approval(timeout="1h", notify=told, client=sdk)
    def delete_database(name: str) -> None:
        ran.append(name)

    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(delete_database, "production")
        url = told.next()
        assert sdk.retrieve_token(token_id(url)).title == "Delete database?"  # from its name
        decide(url, approve=False, approver="Bob", comment="not on a Friday")
        with pytest.raises(ApprovalRejected) as rejected:
            call.result(timeout=10)
    assert ran == []
    assert (rejected.value.approver, rejected.value.comment) == ("Bob", "not on a Friday")
    assert str(rejected.value) == (
        "test_a_rejected_call_raises_and_never_runs.<locals>.delete_database: "
        "rejected by Bob: not on a Friday"
    )
    assert isinstance(rejected.value, ApprovalError)
    assert rejected.value.token.id == token_id(url)


def test_a_call_nobody_decides_times_out_and_its_url_is_logged(sdk, caplog):
    ran = []

    @require_approval(timeout="1s", client=sdk)  # no notify: the URL is logged
    def deploy() -> None:
        ran.append(True)

    with (
        caplog.at_level(logging.WARNING, logger="waitpoint.guard"),
        pytest.raises(ApprovalTimedOut) as late,
    ):
        deploy()
    assert ran == []
    assert late.value.token.status == "TIMED_OUT"
    (record,) = caplog.records
    assert record.getMessage().endswith(f"deploy waits for approval: {late.value.token.url}")


def test_a_withdrawn_call_raises_approval_withdrawn(sdk, server, key):
    told, ran = Told(), []

    @require_approval(timeout="1h", notify=told, client=sdk)
    def send_newsletter() -> None:
        ran.append(True)

    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(send_newsletter)
        withdraw(server, key, told.next(), "sent by hand instead")
        with pytest.raises(ApprovalWithdrawn) as withdrawn:
            call.result(timeout=10)
    assert ran == []
    assert withdrawn.value.reason == "Withdrawn: sent by hand instead"
    assert withdrawn.value.token.status == "COMPLETED"
    assert not isinstance(withdrawn.value, ApprovalRejected | ApprovalTimedOut)


def test_a_retried_call_with_the_same_key_waits_on_the_same_token(sdk, server, key):
    told, ran = Told(), []
    run = uuid.uuid4().hex[:8]

    @require_approval(
        timeout="1h",
        idempotency_key=lambda customer, amount: f"{run}-refund-{customer}-{amount}",
        notify=told,
        client=sdk,
    )
    def refund(customer: int, amount: float) -> str:
        ran.append((customer, amount))
        return "done"

    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(refund, 42, 240)
        url = told.next()
        retry = pool.submit(refund, 42, amount=240)  # the agent restarted and asks again
        assert told.next() == url
        other = pool.submit(refund, 7, 240)
        other_url = told.next()
        assert other_url != url  # other arguments, another key, another token

        decide(url)  # one approval answers both waiting calls
        assert first.result(timeout=10) == retry.result(timeout=10) == "done"
        withdraw(server, key, other_url, "duplicate")
        with pytest.raises(ApprovalWithdrawn):
            other.result(timeout=10)
    assert ran == [(42, 240), (42, 240)]
    assert [t.id for t in sdk.list_tokens(idempotency_key=f"{run}-refund-42-240")] == [
        token_id(url)
    ]


def test_an_api_approval_runs_and_any_other_output_does_not(sdk):
    told, ran = Told(), []

    @require_approval(notify=told, client=sdk)
    def rotate_keys(*, approval: Decision) -> Decision:
        ran.append(True)
        return approval

    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(rotate_keys)
        sdk.complete_token(token_id(told.next()), {"approved": True, "comment": "by the bot"})
        approval = call.result(timeout=10)
        assert (approval.approved, approval.source, approval.comment) == (True, "api", "by the bot")

        call = pool.submit(rotate_keys)
        sdk.complete_token(token_id(told.next()), {"ok": "sure"})  # not a decision
        with pytest.raises(ApprovalError, match="completed without a decision"):
            call.result(timeout=10)
    assert ran == [True]


def test_a_call_the_function_cannot_take_fails_before_anyone_is_asked(sdk):
    tag = f"run:{uuid.uuid4().hex[:8]}"

    @require_approval(tags=tag, client=sdk)
    def refund(customer: int, *, approval: Decision) -> None: ...

    with pytest.raises(TypeError, match="missing a required argument: 'customer'"):
        refund()
    with pytest.raises(TypeError, match="approval is given by require_approval"):
        refund(42, approval=None)
    assert list(sdk.list_tokens(tags=tag)) == []  # no token was created


def test_the_client_must_match_the_function(sdk, server, key):
    async def later() -> None: ...

    def now() -> None: ...

    async def tell(url: str) -> None: ...

    with pytest.raises(TypeError, match="is async: give it an AsyncWaitpoint"):
        require_approval(client=sdk)(later)
    with pytest.raises(TypeError, match="is not async: give it a Waitpoint"):
        require_approval(client=AsyncWaitpoint(server.url, key))(now)
    with pytest.raises(TypeError, match="notify cannot be a coroutine"):
        require_approval(notify=tell)(now)
    with pytest.raises(TypeError, match="idempotency_key must be a callable"):
        require_approval(idempotency_key="refund-42")


def test_without_a_client_it_uses_the_environment(server, key, monkeypatch):
    monkeypatch.setenv("WAITPOINT_URL", server.url)
    monkeypatch.setenv("WAITPOINT_API_KEY", key)
    waitpoint.configure()  # forget any default client made before

    @require_approval(timeout="1s", notify=lambda url: None)
    def sync_call() -> None: ...

    @require_approval(timeout="1s", notify=lambda url: None)
    async def async_call() -> None: ...

    try:
        with pytest.raises(ApprovalTimedOut) as sync_late:
            sync_call()
        with pytest.raises(ApprovalTimedOut) as async_late:
            run_async(async_call())
        assert sync_late.value.token.url.startswith(server.url)
        assert async_late.value.token.url.startswith(server.url)
    finally:
        waitpoint.configure()


def test_an_async_function_is_guarded_the_same_way(server, key):
    ran = []

    async def scenario():
        urls: asyncio.Queue[str] = asyncio.Queue()

        async def tell(url: str) -> None:  # a coroutine notify is awaited
            await urls.put(url)

        async with AsyncWaitpoint(server.url, key) as client:
            guard = require_approval(timeout="1h", form=FORM, notify=tell, client=client)

            @guard
            async def refund(customer: int, amount: float, *, approval: Decision) -> float:
                ran.append(customer)
                return approval.response["amount"]

            @require_approval(timeout="1s", notify=tell, client=client)
            async def expire() -> None:
                ran.append("expire")

            call = asyncio.create_task(refund(42, 240))
            await decide_async(await urls.get(), answers={"amount": "199.5"})
            assert await asyncio.wait_for(call, 10) == 199.5

            call = asyncio.create_task(refund(7, 240))
            await decide_async(await urls.get(), approve=False, comment="no")
            with pytest.raises(ApprovalRejected) as rejected:
                await asyncio.wait_for(call, 10)
            assert (rejected.value.approver, rejected.value.comment) == (None, "no")

            call = asyncio.create_task(refund(8, 240))
            url = await urls.get()
            await asyncio.to_thread(withdraw, server, key, url, "wrong customer")
            with pytest.raises(ApprovalWithdrawn, match="Withdrawn: wrong customer"):
                await asyncio.wait_for(call, 10)

            call = asyncio.create_task(expire())
            await urls.get()
            with pytest.raises(ApprovalTimedOut):
                await asyncio.wait_for(call, 30)

    run_async(scenario())
    assert ran == [42]


def test_list_tokens_limit_is_the_page_size_as_in_the_typescript_sdk(server, key):
    """trigger.dev's ``wait.listTokens({limit})`` sends ``page[size]`` and its loop
    goes through every page (tests/compat checks it with ``limit: 1``)."""
    tag = f"run:{uuid.uuid4().hex[:8]}"
    pages = []

    def count_pages(response: httpx.Response) -> None:
        if response.request.method == "GET" and response.request.url.path == TOKENS:
            pages.append(response.request.url.params["page[size]"])

    with Waitpoint(server.url, key) as client:
        created = [client.create_token(tags=tag).id for _ in range(7)]
        client._http.event_hooks["response"].append(count_pages)  # to see the pages asked
        listed = [t.id for t in client.list_tokens(tags=tag, limit=3)]
        assert listed == created[::-1]  # every token, newest first
        assert pages == ["3", "3", "3"]  # in pages of at most 3
        assert [t.id for t in client.list_tokens(tags=tag, page_size=5)] == listed
        with pytest.raises(TypeError, match="page_size"):
            list(client.list_tokens(tags=tag, limit=3, page_size=5))
    assert c.list_params(page_size=3) == {"page[size]": "3"}

    async def scenario():
        async with AsyncWaitpoint(server.url, key) as client:
            return [t.id async for t in client.list_tokens(tags=tag, limit=3)]

    assert run_async(scenario()) == listed
