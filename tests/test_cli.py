"""The ``waitpoint`` command: keys, setup, webhooks."""

import pytest
from sqlalchemy import select

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import ApiKey, WebhookEndpoint

from .support import TOKENS


def test_keys_create_prints_the_key_last_and_stores_only_its_hash(app, runner, client):
    result = runner.invoke(args=["keys", "create", "--project", "payments"])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("wp_") and len(key) > 40
    with app.app_context():
        stored = db.session.execute(select(ApiKey)).scalar_one()
        assert stored.prefix == key[:11]
        assert key not in (stored.key_hash, stored.prefix)
    response = client.post(TOKENS, json={}, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200


def test_two_keys_of_one_project_see_the_same_tokens(runner, client):
    keys = [
        runner.invoke(args=["keys", "create", "--project", "p"]).output.strip().splitlines()[-1]
        for _ in range(2)
    ]
    made = client.post(TOKENS, json={}, headers={"Authorization": f"Bearer {keys[0]}"})
    seen = client.get(
        f"{TOKENS}/{made.get_json()['id']}", headers={"Authorization": f"Bearer {keys[1]}"}
    )
    assert seen.status_code == 200


def test_keys_list_shows_prefixes_not_keys(runner):
    key = runner.invoke(args=["keys", "create", "--project", "p"]).output.splitlines()[-1]
    listing = runner.invoke(args=["keys", "list"]).output
    assert listing.splitlines()[0] == "id\tprefix\tproject\tcreated\tstate"
    assert key[:11] in listing and key not in listing
    assert "active" in listing and "\tp\t" in listing


def test_help_shows_only_waitpoints_commands_and_options(runner):
    from app.cli import cli

    shown = runner.invoke(cli, ["--help"]).output
    for theirs in ("--env-file", "--app", "--debug", " run ", " shell ", " routes "):
        assert theirs not in shown, theirs
    for ours in ("serve", "setup", "keys", "users", "webhooks", "deliver", "expire", "mcp", "db"):
        assert f"  {ours} " in shown, ours


def test_keys_revoke_by_prefix(runner, client):
    key = runner.invoke(args=["keys", "create", "--project", "p"]).output.splitlines()[-1]
    result = runner.invoke(args=["keys", "revoke", key[:11]])
    assert result.exit_code == 0, result.output
    assert "revoked" in runner.invoke(args=["keys", "list"]).output
    response = client.post(TOKENS, json={}, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401


def test_keys_revoke_refuses_an_unknown_key(runner):
    result = runner.invoke(args=["keys", "revoke", "wp_nothing"])
    assert result.exit_code == 1
    assert "0 active keys match" in result.output


def test_keys_create_requires_a_project_name(runner):
    assert runner.invoke(args=["keys", "create", "--project", "  "]).exit_code == 2
    assert runner.invoke(args=["keys", "create"]).exit_code == 2


def test_setup_prints_a_first_key_only_once(runner):
    first = runner.invoke(args=["setup"])
    assert first.exit_code == 0, first.output
    assert first.output.strip().splitlines()[-1].startswith("wp_")
    second = runner.invoke(args=["setup"])
    assert "wp_" not in second.output


# -- webhooks ----------------------------------------------------------------------


def _webhooks(runner, *args: str):
    return runner.invoke(args=["webhooks", *args])


def _add_webhook(runner, *args: str) -> tuple[int, str]:
    """A new endpoint of project p: its id (from the first line) and its secret (the last)."""
    result = _webhooks(runner, "add", "--project", "p", "--url", "https://h.example.com/", *args)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    return int(lines[0].split()[2].rstrip(":")), lines[-1]


def test_webhooks_add_prints_the_secret_once_as_the_last_line(app, runner):
    runner.invoke(args=["keys", "create", "--project", "p"])
    endpoint_id, secret = _add_webhook(runner)
    assert secret.startswith("whsec_")
    with app.app_context():
        endpoint = db.session.get(WebhookEndpoint, endpoint_id)
        assert endpoint.secret == secret and endpoint.url == "https://h.example.com/"
        assert endpoint.event_types == "[]"
    listing = _webhooks(runner, "list", "--project", "p").output
    assert f"{endpoint_id}\thttps://h.example.com/\tall events\tenabled" in listing
    assert secret not in listing


def test_webhooks_add_takes_event_types_repeated_or_as_a_comma_list(app, runner):
    runner.invoke(args=["keys", "create", "--project", "p"])
    types = "waitpoint.created,waitpoint.completed"
    endpoint_id, _ = _add_webhook(
        runner, "--event-type", types, "--event-type", "waitpoint.timed_out"
    )
    with app.app_context():
        stored = db.session.get(WebhookEndpoint, endpoint_id).event_types
    assert stored == '["waitpoint.created", "waitpoint.completed", "waitpoint.timed_out"]'
    listing = _webhooks(runner, "list", "--project", "p").output
    assert f"\t{types},waitpoint.timed_out\t" in listing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "ftp://h.example.com/"], "Invalid value for --url: must be an absolute"),
        (["--url", "https://h/", "--event-type", "nope"], "--event-type: unknown event type"),
        (["--project", "nobody", "--url", "https://h/"], "--project: no project 'nobody'"),
    ],
)
def test_webhooks_add_refuses_bad_values_naming_the_option(app, runner, args, message):
    runner.invoke(args=["keys", "create", "--project", "p"])
    project = [] if "--project" in args else ["--project", "p"]
    result = _webhooks(runner, "add", *project, *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    with app.app_context():
        assert db.session.execute(select(WebhookEndpoint)).first() is None


def test_webhooks_disable_and_enable_show_in_the_list(app, runner):
    runner.invoke(args=["keys", "create", "--project", "p"])
    endpoint_id, _ = _add_webhook(runner)
    assert _webhooks(runner, "disable", "--project", "p", str(endpoint_id)).exit_code == 0
    listing = _webhooks(runner, "list", "--project", "p").output
    assert "\tdisabled (disabled by an operator)" in listing
    with app.app_context():
        endpoint = db.session.get(WebhookEndpoint, endpoint_id)
        endpoint.failing_since = utcnow()
        db.session.commit()
    assert "failing since 20" in _webhooks(runner, "list", "--project", "p").output
    assert _webhooks(runner, "enable", "--project", "p", str(endpoint_id)).exit_code == 0
    listing = _webhooks(runner, "list", "--project", "p").output
    assert "\tenabled" in listing and "failing" not in listing


def test_webhooks_rotate_secret_prints_the_new_secret_last(app, runner):
    runner.invoke(args=["keys", "create", "--project", "p"])
    endpoint_id, old = _add_webhook(runner)
    result = _webhooks(runner, "rotate-secret", "--project", "p", str(endpoint_id))
    assert result.exit_code == 0, result.output
    new = result.output.strip().splitlines()[-1]
    assert new.startswith("whsec_") and new != old
    with app.app_context():
        assert db.session.get(WebhookEndpoint, endpoint_id).secret == new


def test_webhooks_remove_deletes_the_endpoint(app, runner):
    runner.invoke(args=["keys", "create", "--project", "p"])
    endpoint_id, _ = _add_webhook(runner)
    assert _webhooks(runner, "remove", "--project", "p", str(endpoint_id)).exit_code == 0
    assert _webhooks(runner, "list", "--project", "p").output.strip() == "no webhook endpoints"


@pytest.mark.parametrize("command", ["disable", "enable", "rotate-secret", "remove"])
def test_webhooks_commands_do_not_reach_another_projects_endpoint(app, runner, command):
    for project in ("p", "q"):
        runner.invoke(args=["keys", "create", "--project", project])
    endpoint_id, secret = _add_webhook(runner)
    for project, endpoint in (("q", endpoint_id), ("p", endpoint_id + 1)):
        result = _webhooks(runner, command, "--project", project, str(endpoint))
        assert result.exit_code == 2
        assert f"no webhook endpoint {endpoint} in project {project!r}" in result.output
    missing = _webhooks(runner, command, "--project", "nobody", str(endpoint_id))
    assert missing.exit_code == 2 and "no project 'nobody'" in missing.output
    with app.app_context():
        endpoint = db.session.get(WebhookEndpoint, endpoint_id)
        assert endpoint.enabled and endpoint.secret == secret
