"""The ``waitpoint`` command: a Flask CLI group over the app.

``waitpoint serve``, ``setup``, ``keys create|list|revoke``, ``webhooks
add|list|disable|enable|rotate-secret|remove``, ``expire``, ``deliver``, ``mcp`` (the MCP
server for AI agents, from the SDK) and the Flask-Migrate ``db`` group (``waitpoint db
upgrade``).
"""

from __future__ import annotations

import os
import sys
import traceback

import click
from flask import Flask, current_app, g
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import func, select, text

from .api import key_cache
from .api.auth import KEY_CACHE
from .config import ConfigError
from .domain import accounts, webhooks
from .domain.credentials import hash_api_key, new_api_key, visible_prefix
from .domain.timeutil import isoformat, utcnow
from .extensions import db
from .infra import metrics, requestlog
from .infra.database import write_transaction
from .models import ApiKey, Project, User

# Any fixed number: every process that migrates PostgreSQL takes this advisory lock.
_MIGRATION_LOCK = 7_310_226_001


def with_migrations(app: Flask) -> None:
    """Flask-Migrate, bound to the app when a command needs it: Alembic (with Mako and
    Pygments, ~11 MB) loads only in a process that migrates, never in a serving one."""
    if "migrate" not in app.extensions:
        from flask_migrate import Migrate

        from . import MIGRATIONS

        Migrate(app, db, directory=MIGRATIONS)


class _MigrationCommands(click.Group):
    """``waitpoint db ...``: Flask-Migrate's commands, loaded on first use."""

    def _commands(self, ctx: click.Context) -> click.Group:
        from flask.cli import ScriptInfo
        from flask_migrate.cli import db as commands

        with_migrations(ctx.ensure_object(ScriptInfo).load_app())
        return commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._commands(ctx).list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._commands(ctx).get_command(ctx, name)


@click.group("db", cls=_MigrationCommands)
@click.option("-d", "--directory", default=None, help="Migration script directory.")
@click.option("-x", "--x-arg", multiple=True, help="Arguments for custom env.py scripts.")
@with_appcontext
def db_group(directory: str | None, x_arg: tuple[str, ...]) -> None:
    """Database migrations (Flask-Migrate, Alembic)."""
    g.directory = directory  # what Flask-Migrate's own group sets for its commands
    g.x_arg = x_arg


def migrate_database() -> None:
    """``alembic upgrade head``, one process at a time on PostgreSQL."""
    from flask_migrate import upgrade

    with_migrations(current_app._get_current_object())
    if current_app.config["WAITPOINT_LOG_FORMAT"] == "json":
        requestlog.json_migration_logging()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
            try:
                upgrade()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
    else:
        upgrade()


def create_api_key(project_name: str) -> str:
    write_transaction()
    project = db.session.execute(
        select(Project).where(Project.name == project_name)
    ).scalar_one_or_none()
    now = utcnow()
    if project is None:
        project = Project(name=project_name, created_at=now)
        db.session.add(project)
    key = new_api_key()
    db.session.add(
        ApiKey(
            project=project, prefix=visible_prefix(key), key_hash=hash_api_key(key), created_at=now
        )
    )
    db.session.commit()
    return key


def _project_name(value: str) -> str:
    name = value.strip()
    if not 1 <= len(name) <= 100:
        raise click.BadParameter("must be 1..100 characters", param_hint="--project")
    return name


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@with_appcontext
def serve_command(host: str, port: int) -> None:
    """Migrate the database, then serve with gunicorn and the timeout scheduler."""
    from .infra.serve import WaitpointServer, fallback_url, server_options

    try:
        options = server_options(host, port)
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    _migrate_in_a_child()
    if current_app.config["WAITPOINT_METRICS"]:
        metrics.use_multiprocess_dir()  # before the workers fork: their metrics add up there
    if current_app.config["WAITPOINT_LOG_FORMAT"] == "json":
        current_app.logger.info("Waitpoint listening on http://%s:%d", host, port)
    else:
        click.echo(f"Waitpoint listening on http://{host}:{port}", err=True)
    WaitpointServer(options, current_app._get_current_object(), fallback_url(host, port)).run()


def _migrate_in_a_child() -> None:
    """Migrate in a forked child: this process becomes gunicorn's master, whose memory every
    worker shares, and need not keep Alembic loaded for the rest of its life."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            migrate_database()
            code = 0
        except click.ClickException as exc:
            exc.show()
        except BaseException:  # noqa: BLE001  (reported, then the parent refuses to start)
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise click.ClickException("the database could not be migrated (see above)")


@click.command("setup")
@with_appcontext
def setup_command() -> None:
    """Migrate the database; print a first API key if there is none."""
    migrate_database()
    if db.session.scalar(select(func.count()).select_from(ApiKey)) == 0:
        key = create_api_key("default")
        click.echo("Created project 'default' and its first API key (shown only once):")
        click.echo(key)


@click.command("expire")
@with_appcontext
def expire_command() -> None:
    """Run one timeout sweep now and print how many tokens it timed out."""
    from .domain.lifecycle import expire_due

    click.echo(expire_due(batch_size=current_app.config["WAITPOINT_SWEEP_BATCH"]))


@click.command("deliver")
@with_appcontext
@click.option("--mail/--no-mail", default=True, help="Also send the approvers' mail that is due.")
def deliver_command(mail: bool) -> None:
    """Send the webhook deliveries (and approvers' mail) due now; print how many attempts
    were made (webhooks first, then mail on a line of its own)."""
    from .infra.mailer import send_due_mail
    from .infra.webhooks import deliver_due

    click.echo(deliver_due())
    if mail:
        click.echo(f"mail: {send_due_mail()}")


@click.group("keys")
def keys_group() -> None:
    """Manage API keys."""


@keys_group.command("create")
@click.option("--project", "project_name", required=True, help="Project name (created if new).")
@with_appcontext
def keys_create(project_name: str) -> None:
    """Create an API key; the key is printed once, as the last line."""
    key = create_api_key(_project_name(project_name))
    click.echo(f"API key for project {project_name!r} (store it now; it is shown only once):")
    click.echo(key)


@keys_group.command("list")
@with_appcontext
def keys_list() -> None:
    """List API keys by their visible prefix."""
    rows = db.session.execute(
        select(ApiKey.id, ApiKey.prefix, Project.name, ApiKey.created_at, ApiKey.revoked_at)
        .join(Project)
        .order_by(ApiKey.id)
    ).all()
    if not rows:
        click.echo("no API keys")
        return
    click.echo("id\tprefix\tproject\tcreated\tstate")
    for row in rows:
        state = f"revoked {isoformat(row.revoked_at)}" if row.revoked_at else "active"
        click.echo(f"{row.id}\t{row.prefix}…\t{row.name}\t{isoformat(row.created_at)}\t{state}")


@keys_group.command("revoke")
@click.argument("key")
@with_appcontext
def keys_revoke(key: str) -> None:
    """Revoke a key, named by its id, its visible prefix or the whole key."""
    query = select(ApiKey).where(ApiKey.revoked_at.is_(None))
    if key.isdigit():
        query = query.where(ApiKey.id == int(key))
    elif key.startswith("wp_") and len(key) > 20:
        query = query.where(ApiKey.key_hash == hash_api_key(key))
    else:
        query = query.where(ApiKey.prefix == key.rstrip("…"))
    write_transaction()
    matches = db.session.execute(query).scalars().all()
    if len(matches) != 1:
        raise click.ClickException(
            f"{len(matches)} active keys match {key!r}; name exactly one (see 'keys list')"
        )
    matches[0].revoked_at = utcnow()
    cache = current_app.extensions[KEY_CACHE]
    try:
        key_cache.in_revoking_transaction(cache, db.session.connection())
    except OSError as exc:
        raise click.ClickException(
            f"not revoked: the servers could not be told ({exc}); check who may write "
            f"{exc.filename or 'the revision file'}"
        ) from None
    db.session.commit()
    try:
        key_cache.after_revocation(cache)
    except OSError as exc:
        click.echo(
            f"warning: the servers were told only once ({exc}); a server may accept the "
            f"key for up to {key_cache.MAX_AGE:.0f} s more",
            err=True,
        )
    click.echo(f"revoked {matches[0].prefix}…")


@click.group("users")
def users_group() -> None:
    """Manage dashboard users."""


def _read_password() -> str:
    """From a prompt (typed twice, hidden) or, when stdin is not a terminal, its first line."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\n")


@users_group.command("create")
@click.option("--email", required=True)
@click.option(
    "--project",
    "projects",
    multiple=True,
    required=True,
    help="A project the user may see (repeat for several; created if new).",
)
@with_appcontext
def users_create(email: str, projects: tuple[str, ...]) -> None:
    """Create a user. The password is read from a prompt or stdin, never a flag."""
    names = [_project_name(p) for p in projects]
    try:
        user = accounts.create_user(email, _read_password(), names, utcnow())
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {user.email} with access to {', '.join(names)}")


@users_group.command("list")
@with_appcontext
def users_list() -> None:
    """List users and their projects."""
    users = db.session.execute(select(User).order_by(User.email)).scalars().all()
    if not users:
        click.echo("no users")
    for user in users:
        click.echo(f"{user.email}\t{', '.join(p.name for p in user.projects)}")


def _user(email: str) -> User:
    try:
        user = accounts.find_user(email)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    if user is None:
        raise click.ClickException(f"no user {email}")
    return user


@users_group.command("delete")
@click.option("--email", required=True)
@with_appcontext
def users_delete(email: str) -> None:
    """Delete a user (their decisions stay recorded under their email)."""
    accounts.delete_user(_user(email))
    click.echo(f"deleted {email}")


@users_group.command("add-project")
@click.option("--email", required=True)
@click.option("--project", required=True)
@with_appcontext
def users_add_project(email: str, project: str) -> None:
    """Give a user access to one more project (created if new)."""
    accounts.add_project(_user(email), _project_name(project), utcnow())
    click.echo(f"{email} can now see {project}")


@users_group.command("unlock")
@click.option("--email", required=True)
@click.option("--ip", help="Also lift this client address's lock on every account.")
@with_appcontext
def users_unlock(email: str, ip: str | None) -> None:
    """Lift a user's login locks after failed logins (from every address) and the slow-down."""
    user = _user(email)
    cleared = accounts.unlock(user.email, ip)
    click.echo(f"unlocked {user.email} ({cleared} login throttle(s) cleared)")


@click.group("webhooks")
def webhooks_group() -> None:
    """Manage a project's webhook endpoints."""


_PROJECT = click.option("--project", "project_name", required=True, help="Project name.")
_ENDPOINT_ID = click.argument("endpoint_id", type=click.IntRange(1, 2**31 - 1))


def _project_id(project_name: str) -> int:
    name = _project_name(project_name)
    found = db.session.execute(select(Project.id).where(Project.name == name)).scalar()
    if found is None:
        raise click.BadParameter(f"no project {name!r}", param_hint="--project")
    return found


def _endpoint_of(project_name: str, endpoint_id: int):
    project_id = _project_id(project_name)
    if webhooks.endpoint(project_id, endpoint_id) is None:
        raise click.BadParameter(
            f"no webhook endpoint {endpoint_id} in project {project_name!r} (see 'webhooks list')",
            param_hint="ENDPOINT_ID",
        )
    return project_id


@webhooks_group.command("add")
@_PROJECT
@click.option("--url", required=True, help="Where events are POSTed (http or https).")
@click.option(
    "--event-type",
    "event_types",
    multiple=True,
    help=f"An event type to send (repeat, or a comma list; default all): "
    f"{', '.join(webhooks.EVENT_TYPES)}.",
)
@with_appcontext
def webhooks_add(project_name: str, url: str, event_types: tuple[str, ...]) -> None:
    """Add an endpoint; its signing secret is printed once, as the last line."""
    project_id = _project_id(project_name)
    types = [t.strip() for text in event_types for t in text.split(",") if t.strip()]
    try:
        url = webhooks.check_url(url, "--url")
        types = webhooks.check_event_types(types, "--event-type")
    except webhooks.WebhookError as exc:
        field, _, message = str(exc).partition(": ")
        raise click.BadParameter(message, param_hint=field) from None
    endpoint, secret = webhooks.create_endpoint(project_id, url, types, utcnow())
    click.echo(f"webhook endpoint {endpoint.id}: {url} ({_types(endpoint)})")
    click.echo("Signing secret (store it now; it is shown only once):")
    click.echo(secret)


def _types(endpoint) -> str:
    return ",".join(webhooks.named_types(endpoint)) or "all events"


@webhooks_group.command("list")
@_PROJECT
@with_appcontext
def webhooks_list(project_name: str) -> None:
    """List endpoints: id, URL, event types, state, failing since."""
    found = webhooks.endpoints(_project_id(project_name))
    if not found:
        click.echo("no webhook endpoints")
    for endpoint in found:
        state = "enabled" if endpoint.enabled else f"disabled ({endpoint.disabled_reason})"
        failing = (
            f"failing since {isoformat(endpoint.failing_since)}" if endpoint.failing_since else ""
        )
        click.echo(
            f"{endpoint.id}\t{endpoint.url}\t{_types(endpoint)}\t{state}\t{failing}".rstrip()
        )


@webhooks_group.command("disable")
@_PROJECT
@_ENDPOINT_ID
@with_appcontext
def webhooks_disable(project_name: str, endpoint_id: int) -> None:
    """Stop sending events to an endpoint."""
    project_id = _endpoint_of(project_name, endpoint_id)
    webhooks.set_enabled(project_id, endpoint_id, False, "disabled by an operator")
    click.echo(f"disabled webhook endpoint {endpoint_id}")


@webhooks_group.command("enable")
@_PROJECT
@_ENDPOINT_ID
@with_appcontext
def webhooks_enable(project_name: str, endpoint_id: int) -> None:
    """Send to an endpoint again (its failure streak starts over)."""
    project_id = _endpoint_of(project_name, endpoint_id)
    webhooks.set_enabled(project_id, endpoint_id, True)
    click.echo(f"enabled webhook endpoint {endpoint_id}")


@webhooks_group.command("rotate-secret")
@_PROJECT
@_ENDPOINT_ID
@with_appcontext
def webhooks_rotate_secret(project_name: str, endpoint_id: int) -> None:
    """Give an endpoint a new secret, printed once as the last line; the old one stops."""
    secret = webhooks.rotate_secret(_endpoint_of(project_name, endpoint_id), endpoint_id)
    click.echo(f"New signing secret of webhook endpoint {endpoint_id} (shown only once):")
    click.echo(secret)


@webhooks_group.command("remove")
@_PROJECT
@_ENDPOINT_ID
@with_appcontext
def webhooks_remove(project_name: str, endpoint_id: int) -> None:
    """Delete an endpoint and its delivery log."""
    webhooks.remove_endpoint(_endpoint_of(project_name, endpoint_id), endpoint_id)
    click.echo(f"removed webhook endpoint {endpoint_id}")


def register(app: Flask) -> None:
    for command in (
        serve_command,
        setup_command,
        expire_command,
        deliver_command,
        keys_group,
        users_group,
        webhooks_group,
    ):
        app.cli.add_command(command)
    app.cli.add_command(db_group)


def _create_app():
    from . import create_app

    try:
        return create_app()
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)


cli = FlaskGroup(
    create_app=_create_app,
    add_version_option=False,
    add_default_commands=False,  # Flask's run, shell, routes: `serve` is how to run it
    load_dotenv=False,
    help="Waitpoint: human-in-the-loop approval tokens.",
)
# Flask's own -e/--env-file, -A/--app and --debug have no use here (the app is this one;
# configuration is the environment): --help shows Waitpoint's options only.
cli.params = [p for p in cli.params if p.name not in ("env_file", "app", "debug")]


@click.command("mcp")
@click.option("--http", is_flag=True, help="Serve streamable HTTP at /mcp instead of stdio.")
@click.option("--host", default="127.0.0.1", show_default=True, help="With --http.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="With --http."
)
def mcp_command(http: bool, host: str, port: int) -> None:
    """Run the MCP server for AI agents: on stdio, or over streamable HTTP with --http.

    It is a client of the Waitpoint server at WAITPOINT_URL (with WAITPOINT_API_KEY), local
    or remote, so it needs no database and does not load the app.
    """
    try:
        from waitpoint.mcp import run
    except ImportError as exc:
        raise click.ClickException(
            f"the MCP server needs the Python SDK with its extra: pip install './sdk[mcp]' ({exc})"
        ) from None
    run(http=http, host=host, port=port)


# On the group itself, not the app's: the group finds it without loading the app.
cli.add_command(mcp_command)


def main() -> None:
    cli.main(prog_name="waitpoint")
