"""Mail to named approvers, sent by the mailer to a real SMTP server (aiosmtpd).

The mailer runs as the scheduler runs it (``send_due_mail``), with time moved for
reminders and retries; tests/test_approvers_live.py has it in the background of a server.
"""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.domain import capability
from app.domain.lifecycle import expire_due
from app.domain.timeutil import utcnow
from app.extensions import db
from app.infra import mailer
from app.models import MailMessage

from .mailserver import MailServer, parts
from .support import ADA, BOB, CAROL, Api, personal_path, vote


@pytest.fixture
def smtp():
    with MailServer() as server:
        yield server


@pytest.fixture
def mail_app(app_factory, smtp):
    return app_factory(
        WAITPOINT_SMTP_URL=mailer_settings(smtp.url),
        WAITPOINT_PUBLIC_URL="https://approvals.example.com",
        WAITPOINT_MAIL_FROM="Approvals <approvals@example.com>",
    )


def mailer_settings(url: str):
    from app.config import env_smtp_url

    return env_smtp_url({"URL": url}, "URL")


@pytest.fixture
def mail_api(mail_app):
    from app.cli import create_api_key

    with mail_app.app_context():
        key = create_api_key("mail")
    return Api(mail_app.test_client(), key)


def send(app, now=None) -> int:
    with app.app_context():
        return mailer.send_due_mail(now=now)


def messages(app):
    with app.app_context():
        return db.session.execute(select(MailMessage).order_by(MailMessage.id)).scalars().all()


def test_each_approver_gets_the_request_with_both_parts_and_their_own_link(
    mail_app, mail_api, smtp
):
    token = mail_api.create(
        title="Refund €240 to order 1042",
        description="The customer says the parcel never arrived.",
        details={"amount": "€240.00", "order": 1042},
        timeout="2d",
        approvers=[ADA, BOB],
        requiredApprovals=2,
        requestedBy="carol@example.com",
    )
    assert send(mail_app) == 2
    inbox = smtp.inbox.wait_for(2)
    assert [str(m["To"]) for m in inbox] == ["Ada <ada@example.com>", "Bob <bob@example.com>"]
    for position, message in enumerate(inbox, start=1):
        assert message["Subject"] == "Approval requested: Refund €240 to order 1042"
        assert message["From"] == "Approvals <approvals@example.com>"
        assert message["Auto-Submitted"] == "auto-generated"
        text, html = parts(message)
        link = "https://approvals.example.com" + personal_path(mail_app, token, position)
        assert link in text and f'href="{link}"' in html
        for part in (text, html):
            assert "The customer says the parcel never arrived." in part
            assert "carol@example.com" in part
            assert "UTC" in part and "in 1 d 23 h" in part
            assert "2 of 2 approvers" in part
            assert "If any approver rejects it, the request is rejected." in part
        assert "<img" not in html  # no tracking pixels
    assert smtp.inbox.envelopes[0] == ("approvals@example.com", ["ada@example.com"])
    sent = messages(mail_app)
    assert [(m.status, m.transport, m.attempts) for m in sent] == [("sent", "smtp", 1)] * 2


def test_the_emailed_link_opens_the_approvers_page_and_votes(mail_app, mail_api, smtp):
    token = mail_api.create(title="Deploy", approvers=[ADA])
    send(mail_app)
    text, _ = parts(smtp.inbox.wait_for(1)[0])
    link = re.search(r"https://approvals\.example\.com(/approvers/\S+)", text).group(1)
    client = mail_app.test_client()
    assert "Approving as" in client.get(link).get_data(as_text=True)
    assert client.post(link, data={"approve": "Approve"}).status_code == 303
    assert mail_api.retrieve(token["id"])["status"] == "COMPLETED"


def test_reminders_go_only_to_approvers_who_have_not_answered(mail_app, mail_api, smtp):
    token = mail_api.create(
        title="Budget", approvers=[ADA, BOB], requiredApprovals=2, reminders=["1h"], timeout="1d"
    )
    send(mail_app)
    vote(mail_app.test_client(), mail_app, token, 1)
    assert send(mail_app, now=utcnow() + timedelta(minutes=30)) == 0  # not due yet
    assert send(mail_app, now=utcnow() + timedelta(minutes=61)) == 1
    inbox = smtp.inbox.wait_for(3)
    reminder = inbox[2]
    assert str(reminder["To"]) == "Bob <bob@example.com>"
    assert reminder["Subject"] == "Reminder: approval requested: Budget"
    assert "A reminder: your approval is still requested." in parts(reminder)[0]
    statuses = [(m.kind, m.to_email, m.status) for m in messages(mail_app)]
    assert ("reminder", "ada@example.com", "skipped") in statuses
    assert ("reminder", "bob@example.com", "sent") in statuses


def test_a_decision_sends_no_action_needed_to_those_who_did_not_answer(mail_app, mail_api, smtp):
    token = mail_api.create(title="Hire", approvers=[ADA, BOB, CAROL], reminders=["1h"])
    send(mail_app)
    vote(mail_app.test_client(), mail_app, token, 2)
    assert send(mail_app) == 2
    notes = smtp.inbox.wait_for(5)[3:]
    assert sorted(str(m["To"]) for m in notes) == ["Ada <ada@example.com>", "carol@example.com"]
    for note in notes:
        assert note["Subject"] == "No action needed: Hire"
        assert "This request was approved on" in parts(note)[1]
    # ...and the reminders that fall due later are not sent.
    assert send(mail_app, now=utcnow() + timedelta(hours=2)) == 0
    assert len(smtp.inbox.messages) == 5


def test_a_time_out_sends_the_notes_too(mail_app, mail_api, smtp):
    mail_api.create(title="Late", approvers=[ADA], timeout="1h")
    send(mail_app)
    later = utcnow() + timedelta(hours=2)
    with mail_app.app_context():
        assert expire_due(now=later) == 1
    assert send(mail_app, now=later) == 1
    note = smtp.inbox.wait_for(2)[1]
    assert "expired on" in parts(note)[0]


def test_no_note_goes_to_someone_who_never_got_the_request(mail_app, mail_api, smtp):
    token = mail_api.create(title="Quick", approvers=[ADA, BOB])
    vote(mail_app.test_client(), mail_app, token, 1)  # before any mail went out
    assert send(mail_app) == 0
    assert smtp.inbox.messages == []
    assert {m.status for m in messages(mail_app)} == {"skipped"}


def test_smtp_down_is_retried_then_failed_and_the_token_is_unaffected(app_factory, smtp):
    from app.cli import create_api_key

    down = app_factory(WAITPOINT_SMTP_URL=mailer_settings("smtp://127.0.0.1:9"))
    with down.app_context():
        api = Api(down.test_client(), create_api_key("down"))
    token = api.create(title="Offline", approvers=[ADA])
    now = utcnow()
    assert send(down, now=now) == 1
    [message] = messages(down)
    assert (message.status, message.attempts) == ("pending", 1)
    assert "ConnectionRefusedError" in message.last_error
    assert timedelta(seconds=27) <= message.next_attempt_at - now <= timedelta(seconds=33)
    for delay in mailer.RETRY_DELAYS:
        now += delay * 1.2
        assert send(down, now=now) == 1
    [message] = messages(down)
    assert (message.status, message.attempts) == ("failed", len(mailer.RETRY_DELAYS) + 1)
    assert api.retrieve(token["id"])["status"] == "WAITING"
    vote(down.test_client(), down, token, 1)
    assert api.retrieve(token["id"])["status"] == "COMPLETED"


def test_a_refused_recipient_fails_at_once_and_the_others_are_sent(mail_app, mail_api, smtp):
    smtp.inbox.refuse = {"bob@example.com"}
    mail_api.create(approvers=[ADA, BOB, CAROL])
    assert send(mail_app) == 3
    by_address = {m.to_email: m for m in messages(mail_app)}
    assert by_address["bob@example.com"].status == "failed"
    assert by_address["bob@example.com"].last_error.startswith("SMTP 550")
    assert {by_address[a].status for a in ("ada@example.com", "carol@example.com")} == {"sent"}
    assert len(smtp.inbox.wait_for(2)) == 2


def test_a_password_is_never_sent_without_starttls(app_factory, smtp):
    from app.cli import create_api_key

    url = f"smtp://user:secret@127.0.0.1:{smtp.port}"
    app = app_factory(WAITPOINT_SMTP_URL=mailer_settings(url))
    with app.app_context():
        Api(app.test_client(), create_api_key("tls")).create(approvers=[ADA])
    send(app)
    [message] = messages(app)
    assert message.status == "pending"
    assert "does not offer STARTTLS" in message.last_error
    assert smtp.inbox.messages == []


def test_without_smtp_mail_goes_to_the_local_mailbox(app, api):
    token = api.create(title="Local", approvers=[ADA])
    assert send(app) == 1
    [message] = messages(app)
    assert (message.status, message.transport) == ("sent", "mailbox")
    assert message.subject == "Approval requested: Local"
    with app.test_request_context():
        path = capability.approver_path(token["id"], 1)
    assert path in message.body_text and path in message.body_html


def test_a_claim_left_by_a_crashed_mailer_is_sent_again_once_it_expires(mail_app, mail_api, smtp):
    mail_api.create(approvers=[ADA])
    now = utcnow()
    with mail_app.app_context():
        claimed = mailer._claim(now, now + timedelta(minutes=5), 10)  # ...and then it died
    assert len(claimed) == 1
    assert send(mail_app, now=now + timedelta(minutes=1)) == 0  # still claimed
    assert send(mail_app, now=now + timedelta(minutes=6)) == 1
    assert len(smtp.inbox.wait_for(1)) == 1


def test_waitpoint_deliver_sends_the_mail_too(mail_app, mail_api, smtp):
    mail_api.create(approvers=[ADA, BOB])
    result = mail_app.test_cli_runner().invoke(args=["deliver"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["0", "mail: 2"]
    assert len(smtp.inbox.wait_for(2)) == 2


def test_mail_and_votes_are_counted_in_the_metrics(mail_app, mail_api, smtp):
    from app.infra.metrics import exposition

    def value(name: str) -> float:
        with mail_app.app_context():
            lines = [
                line for line in exposition().decode().splitlines() if line.startswith(name + " ")
            ]
        return float(lines[0].split()[-1]) if lines else 0.0

    sent = 'waitpoint_mail_attempts_total{kind="request",result="sent"}'
    approved = 'waitpoint_approver_votes_total{decision="approved"}'
    before = value(sent), value(approved)
    token = mail_api.create(approvers=[ADA, BOB], requiredApprovals=2)
    send(mail_app)
    vote(mail_app.test_client(), mail_app, token, 1)
    assert (value(sent), value(approved)) == (before[0] + 2, before[1] + 1)
