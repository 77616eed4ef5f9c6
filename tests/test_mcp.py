"""The MCP server (``python -m waitpoint.mcp``) as an agent uses it: the official ``mcp``
client, over stdio and over streamable HTTP, against a live Waitpoint server; the human
answers on the approval page in Chromium."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager

import pytest
from anyio.from_thread import start_blocking_portal
from flask import Flask
from mcp import Client, types
from mcp.client.stdio import StdioServerParameters
from playwright.sync_api import expect

from app.domain.capability import approver_path
from waitpoint import CompleteResult, Waitpoint

from .browser import LiveApi
from .support import ROOT, SECRET, free_port, server_on_new_database

pytestmark = pytest.mark.slow

TOOLS = {"request_approval", "wait_for_decision", "get_decision", "list_pending", "cancel_request"}
DRAFT = "Dear Ada,\nyour refund of EUR 240 is on its way."
FORM = {
    "type": "object",
    "properties": {
        "reply": {
            "type": "string",
            "title": "Reply to the customer",
            "x-multiline": True,
            "default": DRAFT,
        },
        "amount": {"type": "number", "title": "Refund (EUR)", "minimum": 0},
    },
    "required": ["reply", "amount"],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A live server that takes named approvers (it keeps their mail in its mailbox)."""
    with server_on_new_database(tmp_path_factory.mktemp("mcp"), WAITPOINT_LOCAL_MAILBOX="on") as s:
        yield s


@pytest.fixture(scope="module")
def key(server):
    return server.new_key("agents")


@pytest.fixture(scope="module")
def live_api(server, key):
    api = LiveApi(server, key)
    yield api
    api.http.close()


def mcp_env(url: str, key: str) -> dict:
    """What an MCP client config gives the server: where Waitpoint is, and a key."""
    return {"WAITPOINT_URL": url, "WAITPOINT_API_KEY": key}


class Agent:
    """An MCP client session driven from the test's thread. The client runs in an event
    loop of its own thread (a portal): Playwright's sync API keeps a loop in this one."""

    def __init__(self, portal, client: Client):
        self.portal = portal
        self.client = client

    def call(self, name: str, **arguments) -> types.CallToolResult:
        return self.portal.call(self.client.call_tool, name, arguments)

    def ok(self, name: str, **arguments) -> dict:
        result = self.call(name, **arguments)
        assert not result.is_error, result.content
        assert json.loads(result.content[0].text) == result.structured_content
        return result.structured_content

    def error(self, name: str, **arguments) -> str:
        result = self.call(name, **arguments)
        assert result.is_error, result.structured_content
        return result.content[0].text

    def tools(self) -> dict[str, types.Tool]:
        return {t.name: t for t in self.portal.call(self.client.list_tools).tools}


@contextmanager
def http_server(env: dict):
    """``python -m waitpoint.mcp --http`` on a free port, as its own process: the URL."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("WAITPOINT_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "waitpoint.mcp", "--http", "--port", str(port)],
        cwd=ROOT,
        env={**base, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the MCP server did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()


@contextmanager
def connect(transport: str, env: dict, **options):
    """An agent connected to a new MCP server process over ``transport``."""
    with ExitStack() as stack:
        if transport == "http":
            target = stack.enter_context(http_server(env))
        else:
            target = StdioServerParameters(
                command=sys.executable, args=["-m", "waitpoint.mcp"], env=env, cwd=ROOT
            )
        portal = stack.enter_context(start_blocking_portal())
        client = stack.enter_context(portal.wrap_async_context_manager(Client(target, **options)))
        yield Agent(portal, client)


@pytest.fixture(scope="module", params=["stdio", "http"])
def agent(request, server, key):
    """A client without elicitation, as most are: one session per transport and module."""
    with connect(request.param, mcp_env(server.url, key)) as connected:
        yield connected


def approve_on_the_page(page, url: str, answers: dict | None = None, button="Approve"):
    page.goto(url)
    for label, value in (answers or {}).items():
        page.get_by_label(label).fill(value)
    page.get_by_role("button", name=button).click()
    expect(page.locator("form.decision")).to_have_count(0)  # the card says it is decided


# -- the tools ---------------------------------------------------------------------------


def test_the_tools_and_their_input_schemas(agent):
    tools = agent.tools()
    assert set(tools) == TOOLS
    for tool in tools.values():
        schema = tool.input_schema
        assert tool.description and tool.output_schema
        assert "$defs" not in schema
        for name, prop in schema["properties"].items():
            assert prop.get("description"), (tool.name, name)
            assert {"type": "null"} not in prop.get("anyOf", []), (tool.name, name)
    ask = tools["request_approval"].input_schema
    assert ask["required"] == ["title"]
    assert set(ask["properties"]) == {
        "title",
        "description",
        "details",
        "tags",
        "timeout",
        "approvers",
        "required_approvals",
        "form",
        "idempotency_key",
    }
    assert ask["properties"]["approvers"]["items"] == {
        "type": "object",
        "properties": {
            "email": {
                "type": "string",
                "minLength": 3,
                "maxLength": 320,
                "description": "Where their personal link is emailed.",
            },
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": 100,
                "description": "How they are shown to the others.",
            },
        },
        "required": ["email"],
    }
    wait = tools["wait_for_decision"].input_schema
    assert wait["required"] == ["id"]
    assert wait["properties"]["max_wait_seconds"] | {"description": ""} == {
        "type": "integer",
        "minimum": 1,
        "maximum": 50,
        "default": 25,
        "description": "",
    }
    assert wait["properties"]["id"]["pattern"] == "^waitpoint_[a-z0-9]{25}$"
    assert set(tools["list_pending"].input_schema["properties"]) == {"tags", "approver", "limit"}
    assert set(tools["cancel_request"].input_schema["properties"]) == {"id", "reason"}
    assert tools["get_decision"].annotations.read_only_hint is True
    assert tools["cancel_request"].annotations.destructive_hint is True


def test_an_approval_on_the_page_comes_back_from_wait_for_decision_with_the_form(
    agent, page, live_api
):
    created = agent.ok(
        "request_approval",
        title="Refund EUR 240 to order 1182?",
        description="The parcel arrived damaged.",
        details={"Amount": 240, "Currency": "EUR", "Express": True},
        tags=["mcp", "customer:42"],
        timeout="1h",
        form=FORM,
    )
    assert set(created) == {"id", "approval_url", "status"}
    assert created["status"] == "WAITING"
    token = live_api.retrieve(created["id"])
    assert token["url"] == created["approval_url"]
    assert token["details"] == {"Amount": 240, "Currency": "EUR", "Express": True}
    assert token["tags"] == ["mcp", "customer:42"] and token["form"] == FORM

    approve_on_the_page(
        page,
        created["approval_url"],
        {"Refund (EUR)": "200", "Your name (optional)": "Ada", "Comment (optional)": "ok"},
    )
    decision = agent.ok("wait_for_decision", id=created["id"], max_wait_seconds=5)
    assert decision == {
        "id": created["id"],
        "status": "COMPLETED",
        "approved": True,
        "timed_out": False,
        "withdrawn": False,
        "source": "page",
        "comment": "ok",
        "approver": "Ada",
        "response": {"reply": DRAFT, "amount": 200},
        "ended_at": decision["ended_at"],
    }
    assert decision["ended_at"] == live_api.retrieve(created["id"])["completedAt"]
    assert agent.ok("get_decision", id=created["id"]) == decision


def test_a_decision_made_while_it_waits_ends_the_wait(agent, page):
    created = agent.ok("request_approval", title="Deploy?")
    waiting = agent.portal.start_task_soon(
        agent.client.call_tool, "wait_for_decision", {"id": created["id"], "max_wait_seconds": 30}
    )
    time.sleep(1)  # it holds the server's long poll now
    started = time.monotonic()
    approve_on_the_page(page, created["approval_url"], button="Reject")
    result = waiting.result(timeout=30)
    assert time.monotonic() - started < 10
    assert result.structured_content["approved"] is False
    assert result.structured_content["status"] == "COMPLETED"


def test_a_short_wait_that_ends_before_any_decision_says_retry(agent):
    created = agent.ok("request_approval", title="Deploy?")
    started = time.monotonic()
    assert agent.ok("wait_for_decision", id=created["id"], max_wait_seconds=1) == {
        "id": created["id"],
        "status": "WAITING",
        "retry": True,
    }
    assert 1 <= time.monotonic() - started < 5
    assert agent.ok("get_decision", id=created["id"])["retry"] is True


def test_cancel_request_withdraws_it_and_get_decision_says_so(agent, live_api):
    created = agent.ok("request_approval", title="Deploy?", tags=["to-cancel"])
    listed = agent.ok("list_pending", tags=["to-cancel"])["requests"]
    assert [item["id"] for item in listed] == [created["id"]]
    assert listed[0]["title"] == "Deploy?"
    assert listed[0]["approval_url"] == created["approval_url"]

    cancelled = agent.ok("cancel_request", id=created["id"], reason="rolled back")
    assert cancelled["applied"] is True and cancelled["withdrawn"] is True
    decision = agent.ok("get_decision", id=created["id"])
    assert decision | {"ended_at": ""} == {
        "id": created["id"],
        "status": "COMPLETED",
        "approved": False,
        "timed_out": False,
        "withdrawn": True,
        "message": "Withdrawn: rolled back",
        "ended_at": "",
    }
    assert agent.ok("cancel_request", id=created["id"])["applied"] is False
    assert agent.ok("list_pending", tags=["to-cancel"]) == {"requests": []}
    assert json.loads(live_api.retrieve(created["id"])["output"])["code"] == "WAITPOINT_CANCELLED"


def test_the_sync_sdk_client_cancels_as_the_async_one_does(server, key, live_api):
    with Waitpoint(server.url, key) as sdk:
        token = sdk.create_token(title="Deploy?")
        assert sdk.cancel_token(token, "not needed") == CompleteResult(True, True, "COMPLETED")
        assert sdk.cancel_token(token.id) == CompleteResult(True, False, "COMPLETED")
    output = json.loads(live_api.retrieve(token.id)["output"])
    assert output == {"code": "WAITPOINT_CANCELLED", "message": "Withdrawn: not needed"}


def test_bad_input_is_a_tool_error(agent):
    created = agent.ok("request_approval", title="Deploy?")
    message = agent.error("wait_for_decision", id=created["id"], max_wait_seconds=99)
    assert "max_wait_seconds" in message and "less than or equal to 50" in message
    assert "title" in agent.error("request_approval", description="no title")
    # What the server refuses comes back with its message, naming the field.
    message = agent.error("request_approval", title="Deploy?", timeout="tomorrow")
    assert "400" in message and "timeout:" in message
    message = agent.error("request_approval", title="Deploy?", form={"type": "array"})
    assert "400" in message and "form" in message
    assert "404" in agent.error("get_decision", id="waitpoint_" + "0" * 25)
    assert "pattern" in agent.error("get_decision", id="../../webhooks")


# -- configuration and failures ------------------------------------------------------------


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_a_bad_api_key_is_a_tool_error_with_the_servers_401_message(transport, server):
    with connect(transport, mcp_env(server.url, "wp_" + "x" * 43)) as agent:
        message = agent.error("request_approval", title="Deploy?")
        assert "401" in message
        assert "the API key is not valid or has been revoked" in message
        assert "401" in agent.error("list_pending")


def test_an_unreachable_server_is_a_tool_error_naming_it():
    url = f"http://127.0.0.1:{free_port()}"
    with connect("stdio", mcp_env(url, "wp_key")) as agent:
        message = agent.error("get_decision", id="waitpoint_" + "0" * 25)
        assert f"the Waitpoint server at {url} could not be reached" in message
        message = agent.error("wait_for_decision", id="waitpoint_" + "0" * 25)
        assert "could not be reached" in message


def test_without_its_environment_each_tool_says_what_is_missing():
    with connect("stdio", {}) as agent:
        message = agent.error("list_pending")
        assert "WAITPOINT_URL" in message


def test_the_waitpoint_command_runs_it_and_documents_its_options():
    waitpoint = os.path.join(os.path.dirname(sys.executable), "waitpoint")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}
    shown = subprocess.run(
        [waitpoint, "mcp", "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert "--http" in shown.stdout and "--port" in shown.stdout


# -- outcomes ----------------------------------------------------------------------------


def test_a_request_that_times_out_is_not_approved(agent):
    created = agent.ok("request_approval", title="Deploy?", timeout="1s")
    decision = agent.ok("wait_for_decision", id=created["id"], max_wait_seconds=10)
    assert decision["status"] == "TIMED_OUT"
    assert decision["approved"] is False and decision["timed_out"] is True
    assert decision["message"].startswith("Waitpoint timed out at")


def test_a_request_a_program_completed_says_so_with_its_output(agent, live_api):
    created = agent.ok("request_approval", title="Deploy?")
    live_api.complete(created["id"], {"approved": True, "comment": "by the release script"})
    decision = agent.ok("get_decision", id=created["id"])
    assert decision["approved"] is True and decision["source"] == "api"
    assert decision["comment"] == "by the release script"
    assert decision["output"] == {"approved": True, "comment": "by the release script"}
    other = agent.ok("request_approval", title="Deploy?")
    live_api.complete(other["id"], {"ok": 1})
    assert agent.ok("get_decision", id=other["id"])["approved"] is False


def test_an_idempotency_key_returns_the_same_request(agent):
    first = agent.ok("request_approval", title="Deploy?", idempotency_key="deploy-1182")
    again = agent.ok("request_approval", title="Deploy?", idempotency_key="deploy-1182")
    assert again == {**first, "reused": True}


def signed_link(server, token_id: str, position: int) -> str:
    """The n-th named approver's personal link, signed as the server signs it."""
    signer = Flask(__name__)
    signer.config["SECRET_KEY"] = SECRET
    with signer.app_context():
        return server.url + approver_path(token_id, position)


def test_named_approvers_decide_and_their_approvals_come_back(page, server, key):
    with connect("stdio", mcp_env(server.url, key)) as agent:
        created = agent.ok(
            "request_approval",
            title="Refund EUR 240?",
            approvers=[{"email": "ada@example.com", "name": "Ada"}, {"email": "bob@example.com"}],
            required_approvals=2,
            tags=["named"],
        )
        listed = agent.ok("list_pending", approver="ada@example.com", tags=["named"])
        assert [item["id"] for item in listed["requests"]] == [created["id"]]
        approve_on_the_page(page, signed_link(server, created["id"], 1))
        waiting = agent.ok("wait_for_decision", id=created["id"], max_wait_seconds=1)
        assert waiting["retry"] is True and waiting["required_approvals"] == 2
        assert [(v["email"], v.get("decision")) for v in waiting["approvers"]] == [
            ("ada@example.com", "approved"),
            ("bob@example.com", None),
        ]
        assert agent.ok("list_pending", approver="ada@example.com", tags=["named"]) == {
            "requests": []
        }
        approve_on_the_page(page, signed_link(server, created["id"], 2))
        decision = agent.ok("wait_for_decision", id=created["id"], max_wait_seconds=5)
    assert decision["approved"] is True
    assert decision["approver"] == "bob@example.com"
    assert [a["approver"] for a in decision["approvals"]] == ["ada@example.com", "bob@example.com"]
    assert decision["approvals"][1]["decided_at"].endswith("Z")
    assert "rejected_by" not in decision


# -- elicitation ---------------------------------------------------------------------------


class Elicitations:
    """A client's elicitation callback that answers every request with ``action``."""

    def __init__(self, action: str):
        self.action = action
        self.asked: list[types.ElicitRequestParams] = []

    async def __call__(self, context, params):
        self.asked.append(params)
        return types.ElicitResult(action=self.action)


@pytest.mark.parametrize(
    ("transport", "mode"), [("stdio", "auto"), ("http", "auto"), ("stdio", "legacy")]
)
def test_an_elicitation_opens_the_page_and_its_answer_decides_nothing(
    transport, mode, server, key, live_api
):
    """``auto`` speaks MCP 2026-07-28 (the question rides an InputRequiredResult);
    ``legacy`` 2025-11-25 (a request to the client in the middle of the call)."""
    answers = Elicitations("accept")
    env = mcp_env(server.url, key)
    with connect(transport, env, mode=mode, elicitation_callback=answers) as agent:
        created = agent.ok("request_approval", title="Deploy to production?")
        [asked] = answers.asked
        assert asked.mode == "url"
        assert asked.url == created["approval_url"]
        # Only 2025-11-25 has elicitation ids: the token's, there.
        assert asked.elicitation_id == (created["id"] if mode == "legacy" else None)
        assert "Deploy to production?" in asked.message
        assert created == {
            "id": created["id"],
            "approval_url": created["approval_url"],
            "status": "WAITING",
            "elicitation": "accept",
        }
        assert agent.ok("get_decision", id=created["id"])["retry"] is True
        assert agent.ok("wait_for_decision", id=created["id"], max_wait_seconds=1)["retry"]
    assert live_api.retrieve(created["id"])["status"] == "WAITING"


def test_a_declined_elicitation_still_leaves_the_request_and_its_url(server, key, live_api):
    answers = Elicitations("decline")
    with connect("stdio", mcp_env(server.url, key), elicitation_callback=answers) as agent:
        created = agent.ok("request_approval", title="Deploy?")
        # Named approvers decide on their own pages: the client is not asked to open this one.
        named = agent.ok("request_approval", title="Deploy?", approvers=[{"email": "a@b.example"}])
    assert created["elicitation"] == "decline" and "elicitation" not in named
    assert len(answers.asked) == 1
    assert live_api.retrieve(created["id"])["status"] == "WAITING"


def test_a_client_without_elicitation_is_not_asked(agent):
    created = agent.ok("request_approval", title="Deploy?")
    assert "elicitation" not in created
