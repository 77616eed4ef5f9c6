"""Fixtures around the real app factory, on SQLite or (WAITPOINT_TEST_DATABASE_URL) PostgreSQL."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import text

from app.cli import create_api_key, migrate_database
from app.extensions import db

from .support import Api, create_database, drop_database, make_app, on_postgresql


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory):
    """One migrated database per session: a template file (SQLite) or a database (PostgreSQL)."""
    url = create_database(tmp_path_factory.mktemp("template"))
    app = make_app(url)
    with app.app_context():
        migrate_database()
        db.engine.dispose()
    yield url
    drop_database(url)


@pytest.fixture
def database_url(migrated_database, tmp_path):
    if on_postgresql():
        yield migrated_database
        _truncate_all(migrated_database)
    else:
        path = tmp_path / "waitpoint.db"
        shutil.copyfile(migrated_database.removeprefix("sqlite:///"), path)
        yield f"sqlite:///{path}"


def _truncate_all(url: str) -> None:
    app = make_app(url)
    with app.app_context():
        tables = ", ".join(t.name for t in db.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.engine.dispose()


@pytest.fixture
def app_factory(database_url):
    """Builds more apps on the test's database (other settings); closes their pools after."""
    made = []

    def build(url: str | None = None, **config):
        made.append(make_app(url or database_url, **{"WTF_CSRF_ENABLED": False, **config}))
        return made[-1]

    yield build
    for built in made:
        built.extensions["waitpoint_waits"].close()
        with built.app_context():
            db.engine.dispose()


@pytest.fixture
def app(app_factory):
    return app_factory()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def _key(app, project: str) -> str:
    with app.app_context():
        return create_api_key(project)


@pytest.fixture
def api_key(app):
    return _key(app, "alpha")


@pytest.fixture
def other_key(app):
    return _key(app, "beta")


@pytest.fixture
def api(client, api_key):
    return Api(client, api_key)


@pytest.fixture
def other_api(client, other_key):
    return Api(client, other_key)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """A real ``waitpoint serve`` process (2 gunicorn workers, schedulers on)."""
    from .support import server_on_new_database

    with server_on_new_database(tmp_path_factory.mktemp("live")) as server:
        yield server


@pytest.fixture(scope="module")
def live_key(live_server):
    return live_server.new_key("live")


@pytest.fixture(scope="module")
def live_api(live_server, live_key):
    """The JSON API of the live server, with its key."""
    from .browser import LiveApi

    api = LiveApi(live_server, live_key)
    yield api
    api.http.close()


# A test on the live server or in a browser (Playwright's fixtures) is slow wherever it is
# written, marked or not: the quick tier (`pytest -m "not slow"`) never starts one.
SLOW_FIXTURES = {"live_server", "browser", "context", "page"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        arguments = set(callspec.params) if callspec else set()  # a parameter named page
        if SLOW_FIXTURES & (set(getattr(item, "fixturenames", ())) - arguments):
            item.add_marker(pytest.mark.slow)


# Browser tests: Debian's Chromium when present (CHROMIUM_PATH overrides), else Playwright's.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    import os

    executable = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    args = {**browser_type_launch_args, "args": CHROMIUM_ARGS}
    if executable:
        args["executable_path"] = executable
    return args
