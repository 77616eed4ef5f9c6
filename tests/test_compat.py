"""The published npm @trigger.dev/sdk (4.x) against a live server, unmodified."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

COMPAT = Path(__file__).parent / "compat"


@pytest.fixture(scope="module")
def sdk_run(live_server, live_key):
    assert shutil.which("node"), "Node.js is needed for the compatibility tests"
    assert (COMPAT / "node_modules" / "@trigger.dev" / "sdk").is_dir(), "run tests/prepare"
    env = {**os.environ, "WAITPOINT_URL": live_server.url, "WAITPOINT_API_KEY": live_key}
    done = subprocess.run(
        ["node", "drive.mjs"], cwd=COMPAT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


def test_create_token_returns_id_url_and_caching(sdk_run):
    created = sdk_run["created"]
    assert created["a"]["id"].startswith("waitpoint_")
    assert created["a"]["isCached"] is False
    assert created["aAgain"]["id"] == created["a"]["id"]
    assert created["aAgain"]["isCached"] is True
    assert "/callback/" in created["a"]["url"]


def test_retrieve_token_parses_every_field(sdk_run):
    waiting = sdk_run["waiting"]
    assert waiting["status"] == "WAITING"
    assert waiting["tags"][1] == "kind:a"
    assert waiting["idempotencyKey"].endswith("-a")
    assert waiting["timeoutAt"] and waiting["createdAt"]
    assert "output" not in waiting or waiting["output"] is None


def test_complete_token_and_the_callback_url_deliver_outputs(sdk_run):
    assert sdk_run["completeResult"]["success"] is True
    assert sdk_run["callbackStatus"] == 200
    assert sdk_run["completedA"]["status"] == "COMPLETED"
    assert sdk_run["completedA"]["output"] == {"status": "approved", "by": "sdk"}
    assert sdk_run["completedC"]["output"] == {"status": "rejected", "by": "callback"}
    assert sdk_run["completedA"]["completedAt"]


def test_a_timeout_is_the_sdks_timeout_error(sdk_run):
    timed_out = sdk_run["timedOut"]
    assert timed_out["status"] == "TIMED_OUT"
    assert timed_out["errorName"] == "WaitpointTimeoutError"
    assert timed_out["errorMessage"].startswith("Waitpoint timed out at ")
    assert timed_out["output"] is None


def test_list_tokens_paginates_and_filters(sdk_run):
    created = sdk_run["created"]
    assert sdk_run["listedAll"] == [created[k]["id"] for k in ("c", "b", "a")]
    assert sdk_run["listedCompleted"] == [created["c"]["id"], created["a"]["id"]]
    assert sdk_run["listedByKey"] == [created["a"]["id"]]


def test_an_unknown_token_is_a_404_error(sdk_run):
    assert sdk_run["unknown"]["status"] == 404
