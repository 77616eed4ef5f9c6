"""Named approvers through a real server: mail sent in the background to a real SMTP
server, the emailed link followed in Chromium, and votes racing across processes."""

import json
import re
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from playwright.sync_api import expect

from .browser import LiveApi, serious_violations
from .mailserver import MailServer, parts
from .support import ServerProcess, create_database, drop_database

pytestmark = pytest.mark.slow

LINK = re.compile(r"(http://127\.0\.0\.1:\d+/approvers/\S+)")


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "bypass_csp": True}  # to inject axe-core


@pytest.fixture(scope="module")
def smtp():
    with MailServer() as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory, smtp):
    """``waitpoint serve`` (2 workers) sending mail to ``smtp``, without WAITPOINT_PUBLIC_URL:
    the links in its mail name it as it is bound."""
    tmp = tmp_path_factory.mktemp("approvers")
    url = create_database(tmp)
    process = ServerProcess(url, tmp, WAITPOINT_SMTP_URL=smtp.url).start()
    yield process
    process.stop()
    drop_database(url)


@pytest.fixture(scope="module")
def live_api(server):
    api = LiveApi(server, server.new_key("approvers"))
    yield api
    api.http.close()


def links_for(smtp, address: str, count: int = 1, timeout: float = 20) -> list[str]:
    """The personal links mailed to ``address`` so far, waiting for ``count`` of them."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = [
            LINK.search(parts(m)[0]).group(1)
            for m in list(smtp.inbox.messages)
            if address in str(m["To"]) and m["Subject"].startswith("Approval requested")
        ]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_the_mail_goes_out_in_the_background_and_chromium_approves_from_it(
    page, server, live_api, smtp
):
    token = live_api.create(
        title="Refund €240 to order 1042",
        approvers=[{"email": "ada@example.com", "name": "Ada"}, {"email": "bob@example.com"}],
        requiredApprovals=2,
        timeout="1d",
    )
    [ada_link] = links_for(smtp, "ada@example.com")
    [bob_link] = links_for(smtp, "bob@example.com")
    assert ada_link.startswith(f"{server.url}/approvers/{token['id']}/1/")
    assert bob_link.startswith(f"{server.url}/approvers/{token['id']}/2/")

    page.goto(ada_link)
    expect(page.get_by_text("Approving as")).to_contain_text("Ada <ada@example.com>")
    expect(page.get_by_role("heading", name="0 of 2 approvals")).to_be_visible()
    expect(page.get_by_label("Your name (optional)")).to_have_count(0)
    assert serious_violations(page) == []
    page.get_by_label("Comment (optional)").fill("Within policy.")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#card")).to_contain_text("your approval is recorded")
    expect(page.locator("#card")).to_contain_text("You approved this request")
    assert live_api.retrieve(token["id"])["status"] == "WAITING"

    page.goto(bob_link)
    expect(page.get_by_role("heading", name="1 of 2 approvals")).to_be_visible()
    expect(page.locator(".vote-approved")).to_contain_text("Ada")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#card")).to_contain_text("your approval completed this request")
    done = live_api.retrieve(token["id"])
    output = json.loads(done["output"])
    assert done["status"] == "COMPLETED" and output["approved"] is True
    assert [(v["approver"], v["comment"]) for v in output["approvals"]] == [
        ("ada@example.com", "Within policy."),
        ("bob@example.com", ""),
    ]


def test_without_javascript_the_vote_is_a_plain_form_post(browser, live_api, smtp):
    token = live_api.create(title="No JS", approvers=[{"email": "nojs@example.com"}])
    [link] = links_for(smtp, "nojs@example.com")
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(link)
        page.get_by_role("button", name="Reject").click()
        expect(page.locator("#card")).to_contain_text("you rejected this request")
    finally:
        context.close()
    assert json.loads(live_api.retrieve(token["id"])["output"])["rejectedBy"] == "nojs@example.com"


def _voter(link: str, approve: bool, barrier: threading.Barrier):
    """An approver's browser: open the page (its CSRF token and cookie), then vote at once."""
    with httpx.Client(timeout=30) as client:
        html = client.get(link).text
        csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
        button = {"approve": "Approve"} if approve else {"reject": "Reject"}
        barrier.wait()
        answer = client.post(link, data={"csrf_token": csrf, **button})
        assert answer.status_code in (303, 409), answer.text


@pytest.mark.parametrize(
    "votes", [(True, True, True), (True, False, True)], ids=["three-approve", "one-rejects"]
)
def test_votes_at_the_same_moment_decide_once_with_a_true_vote_list(live_api, smtp, votes):
    for round_number in range(5):
        kind = "approve" if votes[1] else "reject"
        emails = [f"r{round_number}-{i}-{kind}@example.com" for i in range(3)]
        token = live_api.create(approvers=[{"email": e} for e in emails], requiredApprovals=2)
        links = [links_for(smtp, e)[0] for e in emails]
        barrier = threading.Barrier(3)
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(_voter, links, votes, [barrier] * 3))

        done = live_api.retrieve(token["id"])
        assert done["status"] == "COMPLETED"
        output = json.loads(done["output"])
        recorded = {a["email"]: a["decision"] for a in done["approvers"]}
        approved = [e for e in emails if recorded[e] == "approved"]
        rejected = [e for e in emails if recorded[e] == "rejected"]
        assert sorted(v["approver"] for v in output["approvals"]) == sorted(approved)
        if output["approved"]:
            assert len(approved) == 2 and rejected == []
        else:
            assert rejected == [output["rejectedBy"]] and len(approved) <= 1
        # The vote that decided is the last one recorded: nothing was counted after it.
        assert output["approver"] == done["decision"]["approver"]


def test_mail_committed_while_no_mailer_ran_goes_out_after_a_restart(tmp_path, smtp):
    url = create_database(tmp_path)
    env = {"WAITPOINT_SMTP_URL": smtp.url, "WAITPOINT_PUBLIC_URL": "http://127.0.0.1:5000"}
    down = ServerProcess(url, tmp_path, WAITPOINT_SCHEDULER="off", **env).start()
    try:
        api = LiveApi(down, down.new_key("restart"))
        api.create(title="Restart", approvers=[{"email": "restart@example.com"}])
        api.http.close()
        assert links_for(smtp, "restart@example.com", timeout=1.5) == []
    finally:
        down.stop(signal.SIGKILL)
    up = ServerProcess(url, tmp_path, **env).start()
    try:
        assert len(links_for(smtp, "restart@example.com")) == 1
    finally:
        up.stop()
        drop_database(url)
