"""The ``waitpoint`` command: keys, setup."""

from sqlalchemy import select

from app.extensions import db
from app.models import ApiKey

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
    assert key[:11] in listing and key not in listing
    assert "active" in listing and "\tp\t" in listing


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
