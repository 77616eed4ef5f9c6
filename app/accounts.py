"""Operator accounts: passwords (scrypt, via werkzeug), projects, login throttling."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from .database import write_transaction
from .extensions import db
from .models import LoginThrottle, Membership, Project, User

THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 10
MAX_FAILURES_PER_IP = 50
MIN_PASSWORD = 10
# Checked when the email is unknown, so that a wrong email takes as long as a wrong password.
_DUMMY_HASH = generate_password_hash("waitpoint-dummy-password")


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
    password_hash = generate_password_hash(password)  # slow: before taking the write lock
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


def log_in(email: str, password: str, ip: str, now: datetime) -> LoginResult:
    """Check a password, counting failures per account and per IP in a fixed window."""
    try:
        email = normalise_email(email)
    except AccountError:
        email = email.strip().lower()[:320]
    keys = (f"account:{email}", f"ip:{ip}")
    wait = _throttled(keys, now)
    if wait is not None:
        return LoginResult(retry_after=wait)
    user = db.session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    if ok and user is not None:
        write_transaction()
        db.session.execute(delete(LoginThrottle).where(LoginThrottle.key == keys[0]))
        db.session.commit()
        return LoginResult(user=user)
    _count_failure(keys, now)
    return LoginResult()


def _throttled(keys: tuple[str, str], now: datetime) -> timedelta | None:
    limits = dict(zip(keys, (MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_IP), strict=True))
    rows = db.session.execute(select(LoginThrottle).where(LoginThrottle.key.in_(keys))).scalars()
    for row in rows:
        ends = row.window_start + THROTTLE_WINDOW
        if ends > now and row.failures >= limits[row.key]:
            return ends - now
    return None


def _count_failure(keys: tuple[str, str], now: datetime) -> None:
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
