"""An MCP server that lets an AI agent ask a human for approval, and wait for the answer.

    WAITPOINT_URL=https://approvals.example.com WAITPOINT_API_KEY=wp_... python -m waitpoint.mcp
    waitpoint mcp --http --port 8765          # the same, over streamable HTTP

Agents speak MCP, and their tool calls time out after seconds or minutes while a person
answers in hours. So nothing here blocks for long: ``request_approval`` creates a token and
answers at once with its approval page; ``wait_for_decision`` holds one long poll of the
server's ``/wait`` route for at most 50 seconds and answers ``{"status": "WAITING",
"retry": true}`` if nobody has decided yet, for the agent to call it again.

It talks to a Waitpoint server only through this SDK's ``AsyncWaitpoint``, configured by
``WAITPOINT_URL`` and ``WAITPOINT_API_KEY``, so it runs wherever the agent runs, against a
remote deployment. Transports: stdio (the default, for desktop and CLI agents) and
streamable HTTP (``--http``, at ``/mcp``), a process of its own: it is an ASGI app, and
``waitpoint serve`` is a WSGI app under gunicorn, so it is not mounted there.

Where the client supports URL-mode elicitation, ``request_approval`` asks it to open the
approval page for the user. Whatever the client answers decides nothing: the decision is
made on the page. A client without it is not asked.

Install with ``pip install 'waitpoint-sdk[mcp]'``; docs/mcp.md shows the client configs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager, suppress
from typing import Annotated, Any, Literal

import anyio
from mcp import types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from pydantic import BaseModel, Field

# typing_extensions: the SDK runs on 3.10, and pydantic reads typing's TypedDict from 3.12 on.
from typing_extensions import NotRequired, TypedDict  # noqa: UP035

from .aio import AsyncWaitpoint
from .errors import APIError, ConnectionFailed, WaitDeadlineExceeded, WaitpointError
from .models import Token

logger = logging.getLogger(__name__)

MAX_WAIT = 50  # seconds: under the minute after which many clients give up on a tool call
ELICIT_WAIT = 30.0  # seconds a client may take to answer "open this page?" mid-call
OPEN_PAGE = "open_approval_page"  # the key of the elicitation in an InputRequiredResult

INSTRUCTIONS = """\
Waitpoint asks a human to approve or reject what you are about to do, and tells you what \
they decided. request_approval answers at once with an id and an approval_url; the human \
decides on that page, possibly hours later. Give the approval_url to whoever should decide \
(named approvers are emailed a link of their own), then call wait_for_decision with the id \
again and again for as long as it answers retry: true. Go ahead only if it answers \
approved: true. If the approver filled in a form, use their answers (response) rather than \
your draft."""


# -- inputs ------------------------------------------------------------------------------

TokenId = Annotated[
    str,
    Field(
        description="The request's id, as request_approval returned it (waitpoint_...).",
        pattern=r"^waitpoint_[a-z0-9]{25}$",
    ),
]
Tag = Annotated[str, Field(min_length=1, max_length=128)]


class ApproverInput(BaseModel):
    email: str = Field(
        min_length=3, max_length=320, description="Where their personal link is emailed."
    )
    name: str | None = Field(
        None, min_length=1, max_length=100, description="How they are shown to the others."
    )


# -- outputs -----------------------------------------------------------------------------


class Created(TypedDict):
    id: Annotated[str, Field(description="Pass it to wait_for_decision.")]
    approval_url: Annotated[
        str,
        Field(
            description="The approval page: whoever opens it can decide, so give it only "
            "to the person who should."
        ),
    ]
    status: Annotated[str, Field(description="WAITING; for a reused request, whatever it is now.")]
    reused: NotRequired[
        Annotated[bool, Field(description="The idempotency_key matched an earlier request.")]
    ]
    elicitation: NotRequired[
        Annotated[
            Literal["accept", "decline", "cancel"],
            Field(
                description="What the user answered when asked to open the page; it "
                "approves nothing."
            ),
        ]
    ]


class Vote(TypedDict):
    email: str
    name: NotRequired[str]
    decision: NotRequired[Literal["approved", "rejected"]]
    comment: NotRequired[str]
    response: NotRequired[dict[str, Any]]


class Approval(TypedDict):
    approver: str
    name: NotRequired[str]
    comment: str
    decided_at: str
    response: NotRequired[dict[str, Any]]


class Decision(TypedDict):
    id: str
    status: Annotated[
        Literal["WAITING", "COMPLETED", "TIMED_OUT"],
        Field(description="WAITING until someone decides, the request times out or is withdrawn."),
    ]
    retry: NotRequired[
        Annotated[bool, Field(description="No decision yet: call wait_for_decision again.")]
    ]
    approved: NotRequired[
        Annotated[
            bool,
            Field(description="True only if a person approved; false in every other outcome."),
        ]
    ]
    timed_out: NotRequired[Annotated[bool, Field(description="Nobody decided in time.")]]
    withdrawn: NotRequired[
        Annotated[bool, Field(description="It was cancelled before anyone decided.")]
    ]
    message: NotRequired[Annotated[str, Field(description="Why it ended without a decision.")]]
    source: NotRequired[
        Annotated[
            Literal["page", "dashboard", "api"],
            Field(
                description="Where it was decided: page (the approval page, or a named "
                "approver's), dashboard (an operator), api (a program completed it through "
                "the API or the callback URL, with output)."
            ),
        ]
    ]
    comment: NotRequired[Annotated[str, Field(description="The decider's comment.")]]
    approver: NotRequired[Annotated[str, Field(description="Who decided, if known.")]]
    ended_at: NotRequired[
        Annotated[str, Field(description="When it was decided, timed out or withdrawn.")]
    ]
    response: NotRequired[
        Annotated[
            dict[str, Any],
            Field(description="The approver's answers to the form, on an approval."),
        ]
    ]
    approvals: NotRequired[
        Annotated[
            list[Approval],
            Field(description="Named approvers: the approvals that decided it."),
        ]
    ]
    rejected_by: NotRequired[
        Annotated[str, Field(description="Named approvers: whose rejection decided it.")]
    ]
    approvers: NotRequired[
        Annotated[list[Vote], Field(description="Named approvers and their votes so far.")]
    ]
    required_approvals: NotRequired[int]
    output: NotRequired[
        Annotated[
            Any,
            Field(
                description="What the request was completed with, when that was not a "
                "decision on its page (an API call, or a time-out's timeout output)."
            ),
        ]
    ]
    applied: NotRequired[
        Annotated[
            bool,
            Field(description="cancel_request: this call withdrew it (false: it had ended)."),
        ]
    ]


class PendingRequest(TypedDict):
    id: str
    title: NotRequired[str]
    approval_url: str
    created_at: str
    timeout_at: NotRequired[str]


class Pending(TypedDict):
    requests: Annotated[list[PendingRequest], Field(description="Newest first.")]


def decision_of(token: Token) -> Decision:
    """A token as the tools answer with it. ``approved`` is true only for an approval,
    so that an agent that reads nothing else does not go ahead by mistake."""
    out: Decision = {"id": token.id, "status": token.status}
    if token.required_approvals is not None:
        out["approvers"] = [_vote(a) for a in token.approvers]
        out["required_approvals"] = token.required_approvals
    if token.status == "WAITING":
        out["retry"] = True
        return out
    raw = token.raw
    data = json.loads(raw["output"]) if "output" in raw else None
    failed = raw.get("outputIsError") is True and isinstance(data, dict)
    withdrawn = failed and token.status == "COMPLETED" and data.get("code") == "WAITPOINT_CANCELLED"
    out.update(approved=False, timed_out=token.timed_out, withdrawn=withdrawn)
    out["ended_at"] = raw.get("completedAt", "")
    if token.timed_out or withdrawn:
        message = data.get("message") if withdrawn else token.error and str(token.error)
        if message:
            out["message"] = message
        if token.has_timeout_output:
            out["output"] = token.timeout_output
        return out
    decided = token.decision
    answer = data if isinstance(data, dict) else {}
    if decided is not None:
        out.update(approved=decided.approved, source=decided.source, comment=decided.comment)
        approver, response = decided.approver, decided.response
    else:
        # Completed through the API or the callback URL: its data says what it says.
        out["source"] = "api"
        out["approved"] = answer.get("approved") is True
        out["comment"] = answer.get("comment") if isinstance(answer.get("comment"), str) else ""
        approver, response = answer.get("approver"), answer.get("response")
        if "output" in raw:
            out["output"] = data
    if isinstance(approver, str):
        out["approver"] = approver
    if out["approved"] and isinstance(response, dict):
        out["response"] = response
    if token.required_approvals is not None:
        out["approvals"] = [_approval(a) for a in token.approvals]
        if token.rejected_by:
            out["rejected_by"] = token.rejected_by
    return out


def _vote(state) -> Vote:
    vote: Vote = {"email": state.email}
    for key in ("name", "decision", "comment", "response"):
        if getattr(state, key) is not None:
            vote[key] = getattr(state, key)
    return vote


def _approval(approval) -> Approval:
    item: Approval = {
        "approver": approval.approver,
        "comment": approval.comment,
        # As the API writes times: UTC, milliseconds, Z.
        "decided_at": approval.decided_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    if approval.name is not None:
        item["name"] = approval.name
    if approval.response is not None:
        item["response"] = approval.response
    return item


# -- the tools ---------------------------------------------------------------------------


@asynccontextmanager
async def waitpoint() -> AsyncIterator[AsyncWaitpoint]:
    """A client from the environment; every failure a tool error the model can read."""
    try:
        client = AsyncWaitpoint()
    except WaitpointError as exc:
        raise ToolError(f"the MCP server is not configured: {exc}") from None
    try:
        yield client
    except APIError as exc:
        raise ToolError(f"the Waitpoint server answered {exc.status}: {exc.message}") from exc
    except ConnectionFailed as exc:
        raise ToolError(
            f"the Waitpoint server at {client.settings.base_url} could not be reached: {exc}"
        ) from exc
    except (WaitpointError, ValueError) as exc:
        raise ToolError(str(exc)) from exc
    finally:
        await client.aclose()


async def request_approval(
    ctx: Context,
    title: Annotated[
        str,
        Field(
            min_length=1,
            max_length=200,
            description="The question, as the page's heading: what will happen if approved "
            '("Refund EUR 240 to order 1182?").',
        ),
    ],
    description: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=10_000,
            description="Plain text under the title: the context the human needs to decide "
            "(why, what it changes, what you checked). Line breaks are kept, no markup.",
        ),
    ] = None,
    details: Annotated[
        dict[str, str | int | float | bool] | None,
        Field(
            max_length=50,
            description='Facts shown as a table: a flat object, e.g. {"Amount": 240, '
            '"Currency": "EUR", "Express": true}. Values are strings, numbers or booleans.',
        ),
    ] = None,
    tags: Annotated[
        list[Tag] | None,
        Field(
            max_length=10,
            description='Labels to find it again with list_pending, e.g. ["customer:42"].',
        ),
    ] = None,
    timeout: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=100,
            description='When to stop waiting: a duration from now ("30m", "4h", "2d", '
            '"1h30m") or an ISO 8601 time with offset ("2026-12-01T09:00:00Z"). It then '
            "ends timed_out, not approved. Omit to wait until someone decides.",
        ),
    ] = None,
    approvers: Annotated[
        list[ApproverInput] | None,
        Field(
            min_length=1,
            max_length=20,
            description="Named people who must decide, each emailed a personal link. "
            "Omit to let whoever opens approval_url decide.",
        ),
    ] = None,
    required_approvals: Annotated[
        int | None,
        Field(
            ge=1,
            le=20,
            description="With approvers: how many must approve (default 1); one rejection rejects.",
        ),
    ] = None,
    form: Annotated[
        dict[str, Any] | None,
        Field(
            description="Fields the approver fills in before approving, returned as "
            "response: a restricted JSON Schema (MCP elicitation's requestedSchema), "
            '{"type": "object", "properties": {...}, "required": [...]} with at most 20 '
            "flat properties, each a string (title, description, minLength, maxLength, "
            "format email|uri|date|date-time, default, x-multiline: true for a big box; or "
            "enum), a number or integer (minimum, maximum, default) or a boolean. Put your "
            'draft in a default to let them edit it: {"type": "object", "properties": '
            '{"reply": {"type": "string", "title": "Reply", "x-multiline": true, '
            '"default": "Dear Ada, ..."}}, "required": ["reply"]}.',
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=2048,
            description="Your own key for this question: asking again with the same key "
            "returns the same request instead of a second one. Use it when you may retry.",
        ),
    ] = None,
) -> Created | types.InputRequiredResult:
    """Ask a human to approve or reject something. Answers at once with the request's id
    and approval_url; the human decides on that page, possibly hours later. Then give the
    approval_url to the person who should decide (named approvers are emailed their own
    link), call wait_for_decision with the id until it stops answering retry: true, and go
    ahead only if it answers approved: true."""
    async with waitpoint() as client:
        if ctx.request_state is not None:
            # The second round of a URL elicitation (MCP 2026-07-28): the request was made
            # in the first, whose answer this is. The state is sealed by the SDK.
            created: Created = json.loads(ctx.request_state)
            answer = (ctx.input_responses or {}).get(OPEN_PAGE)
            if isinstance(answer, types.ElicitResult):
                created["elicitation"] = answer.action
            created["status"] = (await client.retrieve_token(created["id"])).status
            return created
        token = await client.create_token(
            title=title,
            description=description,
            details=details,
            tags=tags,
            timeout=timeout,
            approvers=[a.model_dump(exclude_none=True) for a in approvers] if approvers else None,
            required_approvals=required_approvals,
            form=form,
            idempotency_key=idempotency_key,
        )
        created = {"id": token.id, "approval_url": token.url, "status": "WAITING"}
        if token.is_cached:
            created["reused"] = True
            created["status"] = (await client.retrieve_token(token.id)).status
        # Named approvers decide on their own pages: this one is theirs to read only.
        if created["status"] != "WAITING" or approvers or not _opens_urls(ctx):
            return created
        message = f"An agent asks for your decision: {title}\nApprove or reject it on this page."
        if not ctx.session.can_send_request:
            return types.InputRequiredResult(
                input_requests={OPEN_PAGE: _open_page(message, token.url)},
                request_state=json.dumps(created),
            )
        action = await _elicit_url(ctx, message, token.url, token.id)
        if action is not None:
            created["elicitation"] = action
            created["status"] = (await client.retrieve_token(token.id)).status
        return created


def _opens_urls(ctx: Context) -> bool:
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and elicitation.url is not None


def _open_page(message: str, url: str) -> types.ElicitRequest:
    """The question of an InputRequiredResult (2026-07-28 has no elicitation ids)."""
    return types.ElicitRequest(params=types.ElicitRequestURLParams(message=message, url=url))


async def _elicit_url(ctx: Context, message: str, url: str, token_id: str) -> str | None:
    """Ask the client mid-call (protocol 2025-11-25) to open the page: its answer, or None.

    Best effort: a client that fails, refuses or takes too long leaves the request as
    made, and the agent still has the URL to hand on."""
    with anyio.move_on_after(ELICIT_WAIT):
        try:
            return (await ctx.elicit_url(message, url, token_id)).action
        except Exception as exc:  # the page works without it, whatever went wrong
            logger.info("URL elicitation skipped: %r", exc)
    return None


async def wait_for_decision(
    id: TokenId,
    max_wait_seconds: Annotated[
        int,
        Field(
            ge=1,
            le=MAX_WAIT,
            description=f"How long to wait here, 1..{MAX_WAIT} seconds. Keep it below your "
            "own tool-call timeout.",
        ),
    ] = 25,
) -> Decision:
    """Wait up to max_wait_seconds for the human's decision on a request. Returns as soon
    as it is decided: approved (true only if a person approved), comment, approver, the
    form's answers (response), or timed_out / withdrawn. If nobody has decided yet it
    answers {"status": "WAITING", "retry": true}: call wait_for_decision again, as often
    as needed; nothing is lost between calls."""
    async with waitpoint() as client:
        # A plain read first: a wrong id, a bad key or an unreachable server is an error
        # now, where the long poll would keep retrying until the time is up.
        token = await client.retrieve_token(id)
        if token.status == "WAITING":
            with suppress(WaitDeadlineExceeded):  # then it answers retry
                token = (await client.for_token(id, deadline=max_wait_seconds)).token
        return decision_of(token)


async def get_decision(id: TokenId) -> Decision:
    """The state of a request now, without waiting: the same answer as wait_for_decision
    ({"status": "WAITING", "retry": true} while nobody has decided)."""
    async with waitpoint() as client:
        return decision_of(await client.retrieve_token(id))


async def list_pending(
    tags: Annotated[
        list[Tag] | None,
        Field(max_length=10, description="Only requests with any of these tags."),
    ] = None,
    approver: Annotated[
        str | None,
        Field(
            min_length=3,
            max_length=320,
            description="Only requests this named approver (an email) has not answered yet.",
        ),
    ] = None,
    limit: Annotated[int, Field(ge=1, le=100, description="At most this many.")] = 20,
) -> Pending:
    """Requests still waiting for a decision, newest first, with their id, title,
    approval_url, created_at and timeout_at (when each times out, if it does)."""
    async with waitpoint() as client:
        listing = client.list_tokens(
            status="WAITING", tags=tags, approver=approver, page_size=limit
        )
        ids = []
        async with aclosing(listing) as tokens:
            async for token in tokens:
                ids.append(token.id)
                if len(ids) == limit:
                    break  # before the next page is fetched
        # A listed token has no title: that is in the whole token, a few reads at a time.
        gate = asyncio.Semaphore(4)

        async def read(token_id: str) -> Token:
            async with gate:
                return await client.retrieve_token(token_id)

        found = await asyncio.gather(*(read(token_id) for token_id in ids))
    return {"requests": [_pending(t) for t in found if t.status == "WAITING"]}


def _pending(token: Token) -> PendingRequest:
    item: PendingRequest = {
        "id": token.id,
        "approval_url": token.url,
        "created_at": token.raw["createdAt"],
    }
    if token.title is not None:
        item["title"] = token.title
    if "timeoutAt" in token.raw:
        item["timeout_at"] = token.raw["timeoutAt"]
    return item


async def cancel_request(
    id: TokenId,
    reason: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=2000,
            description="Why it is no longer needed; shown on the approval page.",
        ),
    ] = None,
) -> Decision:
    """Withdraw a request that is no longer needed: nobody can approve it any more, and
    its page says it was withdrawn. Answers like get_decision, with applied: true if this
    call withdrew it, false if it had already ended (then it stays as it ended: read
    approved)."""
    async with waitpoint() as client:
        result = await client.cancel_token(id, reason)
        decision = decision_of(await client.retrieve_token(id))
    decision["applied"] = result.applied
    return decision


# -- the server --------------------------------------------------------------------------

READ_ONLY = types.ToolAnnotations(read_only_hint=True, open_world_hint=True)


def tools() -> list[Tool]:
    made = [
        Tool.from_function(
            request_approval,
            title="Ask a human to approve",
            annotations=types.ToolAnnotations(
                read_only_hint=False, destructive_hint=False, open_world_hint=True
            ),
        ),
        Tool.from_function(
            wait_for_decision, title="Wait for the human's decision", annotations=READ_ONLY
        ),
        Tool.from_function(get_decision, title="Read a decision", annotations=READ_ONLY),
        Tool.from_function(list_pending, title="List waiting requests", annotations=READ_ONLY),
        Tool.from_function(
            cancel_request,
            title="Withdraw a request",
            annotations=types.ToolAnnotations(
                read_only_hint=False,
                destructive_hint=True,
                idempotent_hint=True,
                open_world_hint=True,
            ),
        ),
    ]
    for tool in made:
        tool.parameters = tidy_schema(tool.parameters)
    return made


def tidy_schema(schema: dict) -> dict:
    """Pydantic's input schema as a model reads it best: optional fields as their plain
    type (not ``anyOf [T, null]``), definitions inlined, no generated titles."""
    definitions = schema.get("$defs", {})

    def tidy(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return tidy({**definitions[node["$ref"].rsplit("/", 1)[-1]], **_without(node, "$ref")})
        arms = node.get("anyOf")
        if arms and {"type": "null"} in arms:
            rest = [arm for arm in arms if arm != {"type": "null"}]
            merged = _without(node, "anyOf")
            if merged.get("default", 0) is None:
                del merged["default"]
            return tidy({**(rest[0] if len(rest) == 1 else {"anyOf": rest}), **merged})
        out = {}
        for key, value in node.items():
            if key in ("title", "$defs"):
                continue  # generated from the names; "title" is never a property name here
            if key == "properties":
                out[key] = {name: tidy(prop) for name, prop in value.items()}
            elif key in ("items", "additionalProperties"):
                out[key] = tidy(value)
            elif key == "anyOf":
                out[key] = [tidy(arm) for arm in value]
            else:
                out[key] = value
        return out

    return tidy(schema)


def _without(node: dict, key: str) -> dict:
    return {k: v for k, v in node.items() if k != key}


def server() -> MCPServer:
    return MCPServer(
        "waitpoint",
        title="Waitpoint: human approval",
        instructions=INSTRUCTIONS,
        tools=tools(),
    )


def run(*, http: bool = False, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until stopped: on stdio, or over streamable HTTP at ``http://host:port/mcp``."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    for name in ("WAITPOINT_URL", "WAITPOINT_API_KEY"):
        if not os.environ.get(name):
            print(f"waitpoint mcp: {name} is not set; every tool call will fail", file=sys.stderr)
    if http:
        server().run("streamable-http", host=host, port=port)
    else:
        server().run("stdio")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m waitpoint.mcp",
        description="The Waitpoint MCP server: AI agents ask a human and wait for the answer. "
        "Configured by WAITPOINT_URL and WAITPOINT_API_KEY.",
    )
    parser.add_argument(
        "--http", action="store_true", help="serve streamable HTTP at /mcp instead of stdio"
    )
    parser.add_argument("--host", default="127.0.0.1", help="with --http (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="with --http (default 8000)")
    args = parser.parse_args(argv)
    run(http=args.http, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
