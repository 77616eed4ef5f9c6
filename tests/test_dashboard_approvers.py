"""Named approvers on the dashboard, server side: each approver's vote and mail on the
token page, Resend link, "1/2" on the board, the "waiting on" filter, and the Mail
page with one message as its approver got it (its HTML in a sandboxed frame)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.config import SmtpSettings
from app.dashboard.mail import FRAMED_POLICY
from app.domain import accounts, approvers, capability, lifecycle, stored
from app.domain.lifecycle import CompletionRecord
from app.domain.timeutil import utcnow
from app.extensions import db
from app.infra.mailer import RETRY_DELAYS, send_due_mail
from app.models import MailMessage

from .support import free_port

PASSWORD = "correct horse battery staple"
ADA = {"email": "ada@example.com", "name": "Ada Lovelace"}
BOB = {"email": "bob@example.com"}
CAROL = {"email": "carol@example.com", "name": "Carol"}


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


def create(api, people=(ADA, BOB), required=2, **body) -> str:
    body = {"title": "Deploy to production", **body}
    return api.create(approvers=list(people), requiredApprovals=required, **body)["id"]


def vote(app, token_id: str, email: str, approve: bool = True, comment: str = ""):
    with app.app_context():
        token = stored.find_token(token_id)
        approver = next(a for a in approvers.of_token(token.pk) if a.email == email)
        record = CompletionRecord(source="page")
        return lifecycle.vote(token.pk, approver.id, approve, comment, record)


def send(app, now=None) -> int:
    with app.app_context():
        return send_due_mail(now)


def messages(app, **where) -> list[MailMessage]:
    with app.app_context():
        query = select(MailMessage).filter_by(**where).order_by(MailMessage.id)
        found = list(db.session.execute(query).scalars())
        db.session.expunge_all()
        return found


def approver_item(page: str, position: int) -> str:
    """The token page's list item of one approver."""
    start = page.index(f'<li class="approver" id="approver-{position}">')
    end = page.find('<li class="approver" ', start + 1)
    return page[start : end if end != -1 else page.index("</section>", start)]


def detail(client, token_id: str, project: int = 1) -> str:
    return html(client.get(f"/dashboard/p/{project}/tokens/{token_id}"))


def resend(client, token_id: str, position: int, project: int = 1):
    return client.post(f"/dashboard/p/{project}/tokens/{token_id}/approvers/{position}/resend")


# The token page ---------------------------------------------------------------------


def test_it_lists_each_approver_with_their_vote_and_their_mail(alice, app, api):
    token_id = create(api, reminders=["1h"])
    send(app)
    vote(app, token_id, "ada@example.com", comment="Checked the <runbook>")
    page = detail(alice, token_id)
    assert 'id="approvers-title">Approvers</h2>' in page
    assert "<strong>1 of 2</strong> approvals" in page
    ada = approver_item(page, 1)
    assert "Ada Lovelace" in ada and "&lt;ada@example.com&gt;" in ada
    assert "Approved</span>" in ada and "Checked the &lt;runbook&gt;" in ada
    assert "Notified <time" in ada and "Resend link" not in ada
    bob = approver_item(page, 2)
    assert "bob@example.com" in bob and "Pending</span>" in bob
    assert "Notified <time" in bob and "Reminder due <time" in bob
    assert 'Resend link<span class="visually-hidden"> to bob@example.com' in bob
    mail = page.split('id="mail-title"')[1]
    assert mail.count('<tr id="mail-') == 4  # two requests, two reminders
    assert "Approval requested: Deploy to production" in mail and "Queued</span>" in mail


def test_it_says_who_was_reminded(alice, app, api):
    token_id = create(api, reminders=["1h"])
    send(app)
    send(app, utcnow() + timedelta(hours=2))
    page = detail(alice, token_id)
    assert "Reminded <time" in approver_item(page, 1)
    assert "Reminder: approval requested" in page


def test_it_shows_the_votes_of_a_decided_token_and_offers_no_resend(alice, app, api):
    token_id = create(api, people=(ADA, BOB, CAROL), required=2)
    send(app)
    vote(app, token_id, "ada@example.com")
    outcome = vote(app, token_id, "bob@example.com", approve=False, comment="Not on a Friday")
    assert outcome.decided
    page = detail(alice, token_id)
    assert "Approved</span>" in approver_item(page, 1)
    bob = approver_item(page, 2)
    assert "Rejected</span>" in bob and "Not on a Friday" in bob
    assert "Did not answer</span>" in approver_item(page, 3)
    assert "Resend link" not in page
    assert "No action needed" in page  # the note to Carol, queued


def test_a_token_without_approvers_has_no_such_sections(alice, api):
    token_id = api.create(title="Plain")["id"]
    page = detail(alice, token_id)
    assert 'id="approvers-title"' not in page and 'id="mail-title"' not in page


# Resend link ------------------------------------------------------------------------


def test_it_resends_a_link_and_the_mailer_sends_it(alice, app, api):
    token_id = create(api)
    send(app)
    response = resend(alice, token_id, 2)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/dashboard/p/1/tokens/{token_id}")
    page = html(alice.get(response.headers["Location"]))
    assert "The link will be sent again to bob@example.com shortly." in page
    assert "the link is queued to be sent again" in approver_item(page, 2)
    requests = messages(app, to_email="bob@example.com", kind="request")
    assert [m.status for m in requests] == ["sent", "pending"]
    assert send(app) == 1
    again = messages(app, id=requests[1].id)[0]
    assert again.status == "sent" and again.transport == "mailbox"
    assert capability_path(app, token_id, 2) in again.body_text


def capability_path(app, token_id: str, position: int) -> str:
    with app.app_context():
        return capability.approver_path(token_id, position)


def test_it_resends_nothing_to_an_approver_who_answered(alice, app, api):
    token_id = create(api)
    vote(app, token_id, "ada@example.com")
    before = len(messages(app))
    response = resend(alice, token_id, 1)
    assert response.status_code == 303
    page = html(alice.get(response.headers["Location"]))
    assert "Nothing sent: Ada Lovelace has nothing left to answer." in page
    assert len(messages(app)) == before


def test_resending_to_an_approver_the_token_does_not_have_is_404(alice, api):
    token_id = create(api)
    assert resend(alice, token_id, 3).status_code == 404
    plain = api.create(title="Plain")["id"]
    assert resend(alice, plain, 1).status_code == 404


@pytest.fixture
def alice_with_csrf(app_factory, users, api_key):
    client = app_factory(WTF_CSRF_ENABLED=True).test_client()
    login = html(client.get("/login"))
    data = {"email": "alice@example.com", "password": PASSWORD, "csrf_token": csrf_of(login)}
    assert client.post("/login", data=data).status_code == 303
    return client


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def test_resending_needs_the_csrf_token(alice_with_csrf, app, api):
    client = alice_with_csrf
    token_id = create(api)
    before = len(messages(app))
    assert resend(client, token_id, 1).status_code == 400
    assert len(messages(app)) == before
    token = csrf_of(detail(client, token_id))
    path = f"/dashboard/p/1/tokens/{token_id}/approvers/1/resend"
    assert client.post(path, data={"csrf_token": token}).status_code == 303
    assert len(messages(app)) == before + 1


# The board --------------------------------------------------------------------------


def board(client, **params) -> str:
    return html(client.get("/dashboard/p/1/tokens", query_string=params))


def rows(page: str) -> list[str]:
    return re.findall(r'data-token="([^"]+)"', page)


def test_the_board_shows_approvals_of_required(alice, app, api):
    with_approvers = create(api)
    plain = api.create(title="Plain")["id"]
    vote(app, with_approvers, "ada@example.com")
    page = board(alice)
    assert rows(page) == [plain, with_approvers]
    row = page.split(f'data-token="{with_approvers}"')[1].split("</tr>")[0]
    assert '<span class="approvals" title="1 of 2 approvals">1/2' in row
    assert 'class="approvals"' not in page.split(f'data-token="{plain}"')[1].split("</tr>")[0]


def test_the_board_reads_every_rows_approvers_in_one_query(alice, app, api):
    from sqlalchemy import event

    for _ in range(3):
        create(api)
    statements = []

    def count(_conn, _cursor, statement, *_args):
        if "token_approvers" in statement:
            statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert board(alice).count('class="approvals"') == 3
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 1


def test_the_board_filters_tokens_waiting_on_an_approver(alice, app, api):
    both = create(api, tags=["deploy"])
    bob_only = create(api, people=(BOB,), required=1)
    plain = api.create(title="Plain", tags=["deploy"])["id"]
    vote(app, both, "ada@example.com")
    assert rows(board(alice, approver="bob@example.com")) == [bob_only, both]
    assert rows(board(alice, approver=" BOB@Example.com ")) == [bob_only, both]
    assert rows(board(alice, approver="ada@example.com")) == []
    assert rows(board(alice, approver="bob@example.com", tag="deploy")) == [both]
    page = board(alice, approver="bob@example.com")
    assert re.search(r'data-status="WAITING">2<', page)
    assert 'value="bob@example.com"' in page
    assert "approver=bob%40example.com" in page  # kept by the tabs' and the live board's links
    assert plain in rows(board(alice))


def test_a_bad_approver_email_is_an_error_next_to_its_field(alice, api):
    token_id = create(api)
    page = board(alice, approver="not-an-email")
    field = page.split('for="approver"')[1].split("</div>")[0]
    assert (
        'aria-invalid="true"' in field
        and 'aria-describedby="approver-hint approver-error"' in field
    )
    assert 'id="approver-error"' in field and "Not an email address" in field
    assert 'value="not-an-email"' in field
    assert rows(page) == [token_id]  # not filtered by it


def test_a_too_long_approver_email_is_an_error_too(alice, api):
    page = board(alice, approver="a" * 400 + "@example.com")
    assert 'id="approver-error"' in page


# The Mail page ----------------------------------------------------------------------


def test_the_layout_links_the_projects_mail_page(alice):
    page = board(alice)
    assert 'href="/dashboard/p/1/mail"' in page


def test_the_mail_page_lists_the_projects_mail_newest_first(alice, app, api):
    first = create(api, people=(ADA,), required=1, title="First")
    send(app)
    create(api, people=(BOB,), required=1, title="Second")
    page = html(alice.get("/dashboard/p/1/mail"))
    ids = [int(i) for i in re.findall(r'<tr id="mail-(\d+)"', page)]
    assert ids == sorted(ids, reverse=True) and len(ids) == 2
    newest, oldest = page.split(f'<tr id="mail-{ids[0]}"')[1], page.split(f'id="mail-{ids[1]}"')[1]
    assert "bob@example.com" in newest and "Queued</span>" in newest
    assert "ada@example.com" in oldest and "Approval requested: First" in oldest
    assert "Sent</span>" in oldest and "to the local mailbox" in oldest
    assert f'/dashboard/p/1/tokens/{first}"' in oldest


def test_the_mail_page_goes_on_to_older_mail(alice, app, api):
    people = [{"email": f"approver{i}@example.com"} for i in range(20)]
    create(api, people=people, required=1, reminders=["1h", "2h"])  # 60 messages
    page = html(alice.get("/dashboard/p/1/mail"))
    assert page.count('<tr id="mail-') == 50
    older = re.search(r'href="(/dashboard/p/1/mail\?after=\d+)" rel="next"', page).group(1)
    rest = html(alice.get(older))
    assert rest.count('<tr id="mail-') == 10 and 'rel="next"' not in rest
    assert html(alice.get("/dashboard/p/1/mail?after=zzz")).count('<tr id="mail-') == 50


def test_a_message_shows_as_its_approver_got_it_with_the_personal_link(alice, app, api):
    token_id = create(api, people=(ADA,), required=1)
    send(app)
    [sent] = messages(app)
    response = alice.get(f"/dashboard/p/1/mail/{sent.id}")
    page = html(response)
    assert '<h1 id="message-title">Approval requested: Deploy to production</h1>' in page
    assert "Ada Lovelace &lt;ada@example.com&gt;" in page
    path = capability_path(app, token_id, 1)
    assert f'<a href="http://localhost{path}" class="wrap" id="personal-link">' in page
    frame = re.search(r"<iframe [^>]*>", page).group(0)
    assert 'sandbox=""' in frame and 'referrerpolicy="no-referrer"' in frame
    assert f'src="/dashboard/p/1/mail/{sent.id}/html"' in frame
    text = page.split('<pre class="mail-text"')[1].split("</pre>")[0]
    assert "Your approval is requested." in text and path in text
    policy = response.headers["Content-Security-Policy"]
    assert "frame-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"

    framed = alice.get(f"/dashboard/p/1/mail/{sent.id}/html")
    assert framed.status_code == 200 and framed.mimetype == "text/html"
    assert framed.get_data(as_text=True) == sent.body_html
    assert framed.headers["Content-Security-Policy"] == FRAMED_POLICY
    assert framed.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert framed.headers["Referrer-Policy"] == "no-referrer"
    assert framed.headers["Cache-Control"] == "no-store"


def test_only_the_mail_pages_change_the_frame_policy(alice, api):
    token_id = create(api)
    pages = ("/dashboard/p/1/tokens", f"/dashboard/p/1/tokens/{token_id}", "/dashboard/p/1/mail")
    for path in pages:
        response = alice.get(path)
        assert "frame-src" not in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"


def test_a_message_not_sent_yet_says_so(alice, app, api):
    create(api, people=(ADA,), required=1)
    [queued] = messages(app)
    page = html(alice.get(f"/dashboard/p/1/mail/{queued.id}"))
    assert "Not written yet" in page and "a message is written when the mailer sends it" in page
    assert "<iframe" not in page
    assert alice.get(f"/dashboard/p/1/mail/{queued.id}/html").status_code == 404


def test_a_message_that_was_never_mail_is_404(alice):
    assert alice.get("/dashboard/p/1/mail/999").status_code == 404
    assert alice.get("/dashboard/p/1/mail/99999999999999999999").status_code == 404


@pytest.fixture
def bobs_message(app, api, other_api) -> tuple[str, int]:
    """A sent message of project beta (Bob's), with a token of alpha's mail beside it."""
    create(api)
    token_id = create(other_api, people=(CAROL,), required=1, title="Beta's secret")
    send(app)
    return token_id, messages(app, to_email="carol@example.com")[0].id


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/p/1/mail/{message}",
        "/dashboard/p/1/mail/{message}/html",
        "/dashboard/p/2/mail/{message}",
        "/dashboard/p/2/mail/{message}/html",
        "/dashboard/p/2/mail",
    ],
)
def test_another_projects_mail_is_404(alice, bobs_message, path):
    _, message = bobs_message
    assert alice.get(path.format(message=message)).status_code == 404


def test_another_projects_mail_is_neither_listed_nor_resent(alice, app, bobs_message):
    token_id, _ = bobs_message
    page = html(alice.get("/dashboard/p/1/mail"))
    assert "carol@example.com" not in page and "Beta's secret" not in page
    before = len(messages(app))
    assert resend(alice, token_id, 1).status_code == 404
    assert resend(alice, token_id, 1, project=2).status_code == 404
    assert len(messages(app)) == before


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/dashboard/p/1/mail"),
        ("get", "/dashboard/p/1/mail/1"),
        ("get", "/dashboard/p/1/mail/1/html"),
        ("post", "/dashboard/p/1/tokens/waitpoint_x/approvers/1/resend"),
    ],
)
def test_without_logging_in_the_mail_pages_send_to_login(client, users, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 302 and "/login?next=" in response.headers["Location"]


# Mail that does not get through -----------------------------------------------------


def test_mail_the_smtp_server_did_not_take_shows_its_error(alice, app, app_factory, api):
    token_id = create(api, people=(ADA,), required=1)
    nowhere = SmtpSettings("127.0.0.1", free_port(), tls=False, username=None, password=None)
    smtp_app = app_factory(WAITPOINT_SMTP_URL=nowhere)
    now = utcnow()
    assert send(smtp_app, now) == 1
    [retrying] = messages(app)
    assert retrying.status == "pending" and retrying.attempts == 1 and retrying.last_error
    page = detail(alice, token_id)
    assert "Mail is not getting through (retrying)" in approver_item(page, 1)
    assert "Not notified" in approver_item(page, 1)
    row = page.split(f'<tr id="mail-{retrying.id}"')[1].split("</tr>")[0]
    assert "Retrying</span>" in row and "after 1 attempt<" in row
    assert retrying.last_error in row and "Next attempt <time" in row

    for _ in RETRY_DELAYS:
        now += timedelta(hours=3)
        send(smtp_app, now)
    [failed] = messages(app)
    assert failed.status == "failed" and failed.attempts == len(RETRY_DELAYS) + 1
    page = detail(alice, token_id)
    assert "Mail is not getting through (failed)" in approver_item(page, 1)
    row = page.split(f'<tr id="mail-{failed.id}"')[1].split("</tr>")[0]
    assert "Failed</span>" in row and f"after {failed.attempts} attempts" in row
    assert failed.last_error in row and "Last tried <time" in row
    listed = html(alice.get("/dashboard/p/1/mail"))
    assert "Failed</span>" in listed and failed.last_error in listed


# In a browser -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_operator(live_server, live_key):
    from .browser import create_operator

    return create_operator(live_server, "live")


def test_in_a_browser_the_pages_fit_a_phone_and_the_message_shows_in_its_frame(
    browser, live_server, live_key, live_operator
):
    from playwright.sync_api import expect

    from .browser import LiveApi, serious_violations

    api = LiveApi(live_server, live_key)
    long_address = {"email": "a.rather.long.address.for.approvals@example.com", "name": "Ada"}
    token_id = create(api, people=(long_address, BOB), title="Deploy to production " * 5)
    api.http.close()
    # Its own policies, as a user's browser applies them; then axe, which needs them off.
    for bypass_csp in (False, True):
        context = browser.new_context(
            viewport={"width": 360, "height": 740}, is_mobile=True, bypass_csp=bypass_csp
        )
        try:
            page = context.new_page()
            page.goto(live_server.url + "/login")
            page.get_by_label("Email").fill(live_operator)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            expect(page.locator(f'tr[data-token="{token_id}"] .approvals')).to_have_text(
                "0/2 approvals"
            )
            page.get_by_role("link", name=token_id[10:18]).click()
            wait_for_the_mailer(page, "#approver-1", "Notified")
            pages = [page.url]
            page.get_by_role("navigation", name="Project").get_by_role("link", name="Mail").click()
            pages.append(page.url)
            page.get_by_role("row").filter(has_text=long_address["email"]).get_by_role(
                "link", name="Request"
            ).click()
            frame = page.frame_locator("iframe.mail-frame")
            expect(frame.get_by_role("link", name="Open the request")).to_be_visible()
            expect(page.locator("#personal-link")).to_have_attribute(
                "href", re.compile("/approvers/")
            )
            pages.append(page.url)
            for url in pages:
                page.goto(url)
                assert page.evaluate("document.documentElement.scrollWidth") <= 360, url
                if bypass_csp:
                    assert serious_violations(page) == [], url
        finally:
            context.close()


def wait_for_the_mailer(page, selector: str, text: str, seconds: float = 10) -> None:
    """The page as it is once the live server's mailer has sent (a page does not refresh
    by itself)."""
    import time

    deadline = time.monotonic() + seconds
    while text not in page.locator(selector).inner_text():
        assert time.monotonic() < deadline, f"{selector} never said {text!r}"
        page.wait_for_timeout(200)
        page.reload()
