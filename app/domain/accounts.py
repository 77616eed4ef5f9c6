"""Operator accounts: passwords (werkzeug, scrypt by default), projects, login throttling."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..infra.database import write_transaction
from ..models import LoginThrottle, Membership, Project, User
from ..web.ratelimit import address_key

# Failed logins are counted in fixed windows per account from one address, per address,
# and per account from every address. Past the first limit that address is locked out of
# that account (the right password from anywhere else still works); past the second it
# is locked out of every account; past the third the account is only slowed down, to one
# attempt per SLOWED_PACE from anywhere, so that guesses spread over many addresses stay
# slow while nobody can lock the owner out for long. `waitpoint users unlock` lifts them.
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT_AND_IP = 10
MAX_FAILURES_PER_IP = 50
MAX_FAILURES_PER_ACCOUNT = 50
SLOWED_PACE = timedelta(seconds=10)
MIN_PASSWORD = 10


def _hash_password(password: str) -> str:
    return generate_password_hash(password, current_app.config["WAITPOINT_PASSWORD_HASH"])


@cache
def _dummy_hash(method: str) -> str:
    """Checked when the email is unknown, so that a wrong email takes as long as a wrong
    password: hashed with the method new passwords get, once per process."""
    return generate_password_hash("waitpoint-dummy-password", method)


class AccountError(ValueError):
    pass


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or email.startswith("@") or email.endswith("@"):
        raise AccountError(f"{email!r} is not an email address")
    return email


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must be at least {MIN_PASSWORD} characters long")


def project_named(name: str, now: datetime) -> Project:
    project = db.session.execute(select(Project).where(Project.name == name)).scalar_one_or_none()
    if project is None:
        project = Project(name=name, created_at=now)
        db.session.add(project)
        db.session.flush()
    return project


def create_user(email: str, password: str, project_names: list[str], now: datetime) -> User:
    email = normalise_email(email)
    check_password_rules(password)
    password_hash = _hash_password(password)  # slow: before taking the write lock
    write_transaction()
    user = User(email=email, password_hash=password_hash, created_at=now)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise AccountError(f"a user {email} already exists") from None
    for name in project_names:
        db.session.add(Membership(user_id=user.id, project_id=project_named(name, now).id))
    db.session.commit()
    return user


def find_user(email: str) -> User | None:
    return db.session.execute(
        select(User).where(User.email == normalise_email(email))
    ).scalar_one_or_none()


def add_project(user: User, project_name: str, now: datetime) -> None:
    write_transaction()
    project = project_named(project_name, now)
    if db.session.get(Membership, (user.id, project.id)) is None:
        db.session.add(Membership(user_id=user.id, project_id=project.id))
    db.session.commit()


def delete_user(user: User) -> None:
    write_transaction()
    db.session.delete(db.session.merge(user))
    db.session.commit()


def member_project(user_id: int, project_id: int) -> Project | None:
    """The project if the user belongs to it; None otherwise (callers answer 404)."""
    return db.session.execute(
        select(Project)
        .join(Membership, Membership.project_id == Project.id)
        .where(Membership.user_id == user_id, Project.id == project_id)
    ).scalar_one_or_none()


@dataclass(frozen=True)
class LoginResult:
    user: User | None = None
    retry_after: timedelta | None = None  # set when throttled


@dataclass(frozen=True)
class _ThrottleKeys:
    account_ip: str
    ip: str
    account: str
    pace: str

    @classmethod
    def of(cls, email: str, ip: str) -> _ThrottleKeys:
        return cls(f"account-ip:{email}|{ip}", f"ip:{ip}", f"account:{email}", f"pace:{email}")


def log_in(email: str, password: str, ip: str, now: datetime) -> LoginResult:
    """Check a password, counting failures per account and address, per address and per
    account (see ``THROTTLE_WINDOW``)."""
    try:
        email = normalise_email(email)
    except AccountError:
        email = email.strip().lower()[:320]
    keys = _ThrottleKeys.of(email, address_key(ip))
    wait = _throttled(keys, now)
    if wait is not None:
        return LoginResult(retry_after=wait)
    user = db.session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    method = current_app.config["WAITPOINT_PASSWORD_HASH"]
    ok = check_password_hash(user.password_hash if user else _dummy_hash(method), password)
    if ok and user is not None:
        write_transaction()
        db.session.execute(delete(LoginThrottle).where(LoginThrottle.key == keys.account_ip))
        db.session.commit()
        return LoginResult(user=user)
    _count_failure((keys.account_ip, keys.ip, keys.account), now)
    return LoginResult()


def _throttled(keys: _ThrottleKeys, now: datetime) -> timedelta | None:
    limits = {
        keys.account_ip: MAX_FAILURES_PER_ACCOUNT_AND_IP,
        keys.ip: MAX_FAILURES_PER_IP,
        keys.account: MAX_FAILURES_PER_ACCOUNT,
    }
    rows = db.session.execute(select(LoginThrottle).where(LoginThrottle.key.in_(limits))).scalars()
    slowed = False
    for row in rows:
        ends = row.window_start + THROTTLE_WINDOW
        if ends > now and row.failures >= limits[row.key]:
            if row.key != keys.account:
                return ends - now  # locked: this address, for this account or for all
            slowed = True
    return _take_turn(keys.pace, now) if slowed else None


def _take_turn(key: str, now: datetime) -> timedelta | None:
    """A slowed-down account's next attempt, if SLOWED_PACE has passed since the last one
    (from whichever address); else how long until it has."""
    write_transaction()
    taken = db.session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key == key, LoginThrottle.window_start <= now - SLOWED_PACE)
        .values(window_start=now, failures=1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken == 0:
        last = db.session.execute(
            select(LoginThrottle.window_start).where(LoginThrottle.key == key)
        ).scalar_one_or_none()
        if last is not None:
            db.session.rollback()
            return last + SLOWED_PACE - now
        db.session.add(LoginThrottle(key=key, failures=1, window_start=now))
    try:
        db.session.commit()
    except IntegrityError:  # another attempt took this turn at the same moment
        db.session.rollback()
        return SLOWED_PACE
    return None


def unlock(email: str, ip: str | None = None) -> int:
    """Lift an account's login locks (from every address) and its slow-down, and with
    ``ip`` that address's lock on every account. Returns how many throttles were cleared."""
    email = normalise_email(email)
    keys = _ThrottleKeys.of(email, "")
    cleared = LoginThrottle.key.in_([keys.account, keys.pace]) | LoginThrottle.key.startswith(
        keys.account_ip, autoescape=True
    )
    if ip:
        cleared |= LoginThrottle.key == _ThrottleKeys.of(email, address_key(ip)).ip
    write_transaction()
    count = db.session.execute(
        delete(LoginThrottle).where(cleared).execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return count


def _count_failure(keys: tuple[str, ...], now: datetime) -> None:
    write_transaction()
    for key in keys:
        counted = db.session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == key, LoginThrottle.window_start > now - THROTTLE_WINDOW)
            .values(failures=LoginThrottle.failures + 1)
            .execution_options(synchronize_session=False)
        ).rowcount
        if counted == 0:
            db.session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
            db.session.add(LoginThrottle(key=key, failures=1, window_start=now))
    try:
        db.session.commit()
    except IntegrityError:  # another process started the same window: its count stands
        db.session.rollback()
