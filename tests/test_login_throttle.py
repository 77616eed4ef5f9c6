"""Failed logins: a lock per account and address, a slow-down per account across all
addresses, and the CLI command that lifts them."""

from datetime import timedelta

import pytest
from sqlalchemy import update

from app.domain import accounts
from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import LoginThrottle

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery staple"
WRONG = "wrong password!"
ATTACKER = "203.0.113.9"
OWNER = "198.51.100.20"


@pytest.fixture
def alice(app):
    with app.app_context():
        accounts.create_user(EMAIL, PASSWORD, ["alpha"], utcnow())


def log_in(client, password=PASSWORD, address=OWNER, email=EMAIL):
    return client.post(
        "/login",
        data={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def failures(app, key: str) -> int | None:
    with app.app_context():
        row = db.session.get(LoginThrottle, key)
        return row.failures if row else None


def as_if_failed(app, key: str, count: int) -> None:
    """Set a counter as if ``count`` logins had failed (each real one hashes a password)."""
    with app.app_context():
        db.session.execute(
            update(LoginThrottle).where(LoginThrottle.key == key).values(failures=count)
        )
        db.session.commit()


def test_wrong_guesses_from_one_address_do_not_lock_the_owner_out(app, alice):
    attacker, owner = app.test_client(), app.test_client()
    for _ in range(accounts.MAX_FAILURES_PER_ACCOUNT_AND_IP):
        assert log_in(attacker, WRONG, ATTACKER).status_code == 401
    assert log_in(owner, PASSWORD, OWNER).status_code == 303  # the right password, elsewhere


def test_the_address_that_guessed_wrong_is_locked_even_with_the_right_password(app, alice):
    client = app.test_client()
    for _ in range(accounts.MAX_FAILURES_PER_ACCOUNT_AND_IP):
        assert log_in(client, WRONG, ATTACKER).status_code == 401
    locked = log_in(client, PASSWORD, ATTACKER)
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.get_data(as_text=True)
    assert 14 * 60 < int(locked.headers["Retry-After"]) <= 15 * 60 + 1


def test_an_ipv6_guesser_cannot_escape_the_lock_by_changing_address(app, alice):
    client = app.test_client()
    for i in range(accounts.MAX_FAILURES_PER_ACCOUNT_AND_IP):
        assert log_in(client, WRONG, f"2001:db8:7:7::{i + 1:x}").status_code == 401
    assert log_in(client, PASSWORD, "2001:db8:7:7:abcd::1").status_code == 429  # same /64
    assert log_in(client, PASSWORD, "2001:db8:7:8::1").status_code == 303  # another network


def test_failures_from_every_address_slow_the_account_down_but_never_lock_it(app, alice):
    now = utcnow()
    with app.app_context():
        for address in ("203.0.113.1", "203.0.113.2"):
            for _ in range(3):
                assert accounts.log_in(EMAIL, WRONG, address, now).user is None
    assert failures(app, f"account:{EMAIL}") == 6  # counted across addresses
    assert failures(app, f"account-ip:{EMAIL}|203.0.113.1") == 3
    as_if_failed(app, f"account:{EMAIL}", accounts.MAX_FAILURES_PER_ACCOUNT)
    pace = accounts.SLOWED_PACE
    with app.app_context():
        first = accounts.log_in(EMAIL, WRONG, "203.0.113.3", now)  # takes the turn
        assert first.retry_after is None and first.user is None
        waits = accounts.log_in(EMAIL, PASSWORD, OWNER, now + timedelta(seconds=1))
        assert waits.user is None and waits.retry_after == pace - timedelta(seconds=1)
        later = accounts.log_in(EMAIL, PASSWORD, OWNER, now + pace + timedelta(seconds=1))
        assert later.user is not None and later.user.email == EMAIL  # its turn: in


def test_a_slowed_down_account_answers_429_with_a_short_retry_after(app, alice):
    client = app.test_client()
    assert log_in(client, WRONG, ATTACKER).status_code == 401
    as_if_failed(app, f"account:{EMAIL}", accounts.MAX_FAILURES_PER_ACCOUNT)
    assert log_in(client, WRONG, "203.0.113.44").status_code == 401  # took the turn
    slowed = log_in(app.test_client(), PASSWORD, OWNER)
    assert slowed.status_code == 429
    assert 0 < int(slowed.headers["Retry-After"]) <= accounts.SLOWED_PACE.total_seconds() + 1


def test_unlock_on_the_command_line_lifts_the_locks_and_the_slow_down(app, alice, runner):
    client = app.test_client()
    for _ in range(accounts.MAX_FAILURES_PER_ACCOUNT_AND_IP):
        log_in(client, WRONG, ATTACKER)
    as_if_failed(app, f"account:{EMAIL}", accounts.MAX_FAILURES_PER_ACCOUNT)
    assert log_in(client, PASSWORD, ATTACKER).status_code == 429
    result = runner.invoke(args=["users", "unlock", "--email", EMAIL.upper()])
    assert result.exit_code == 0, result.output
    assert f"unlocked {EMAIL}" in result.output
    assert failures(app, f"account:{EMAIL}") is None
    assert failures(app, f"account-ip:{EMAIL}|{ATTACKER}") is None
    assert log_in(client, PASSWORD, ATTACKER).status_code == 303


def test_unlock_with_an_address_also_lifts_that_address_lock(app, alice, runner):
    client = app.test_client()
    assert log_in(client, WRONG, ATTACKER, email="nobody@example.com").status_code == 401
    as_if_failed(app, f"ip:{ATTACKER}", accounts.MAX_FAILURES_PER_IP)
    assert log_in(client, PASSWORD, ATTACKER).status_code == 429
    assert runner.invoke(args=["users", "unlock", "--email", EMAIL]).exit_code == 0
    assert log_in(client, PASSWORD, ATTACKER).status_code == 429  # the address is still locked
    result = runner.invoke(args=["users", "unlock", "--email", EMAIL, "--ip", ATTACKER])
    assert result.exit_code == 0, result.output
    assert log_in(client, PASSWORD, ATTACKER).status_code == 303


def test_unlock_names_an_unknown_user(runner):
    result = runner.invoke(args=["users", "unlock", "--email", "nobody@example.com"])
    assert result.exit_code != 0
    assert "no user nobody@example.com" in result.output
