"""Request and response models of the JSON API.

The same pydantic models validate requests and generate the OpenAPI document
(``openapi.py``), so the two cannot drift apart. Field names are the wire's
camelCase. Validation that needs the clock (a timeout in the past) happens where
``now`` is known, in the views' conversion step.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
)
from pydantic_core import PydanticCustomError

from ..domain import limits
from ..domain.jsontext import check_text
from ..domain.timeutil import MAX_DURATION_CHARS, parse_duration
from ..domain.webhooks import URL_MAX
from ..models import COMPLETED, STATUSES, TIMED_OUT, WAITING

MAX_TAGS = limits.TAGS_MAX
MAX_DETAILS = limits.DETAILS_MAX
DetailKey = Annotated[str, StringConstraints(min_length=1, max_length=limits.DETAIL_KEY_MAX)]
DetailValue = Annotated[
    Annotated[str, StringConstraints(max_length=limits.DETAIL_VALUE_MAX)]
    | StrictBool
    | StrictInt
    | Annotated[float, Field(allow_inf_nan=False)],
    Field(union_mode="left_to_right"),
]


def tag_rules(tag: str) -> str:
    """What a tag may not be besides its length: list filters separate tags with commas,
    and a space at either end would make two tags that look alike."""
    if "," in tag:
        raise ValueError("a tag must not contain commas (filter[tags] separates tags with them)")
    if tag != tag.strip():
        raise ValueError("a tag must not start or end with whitespace")
    return tag


Tag = Annotated[
    str, StringConstraints(min_length=1, max_length=limits.TAG_MAX), AfterValidator(tag_rules)
]
Status = Literal[WAITING, COMPLETED, TIMED_OUT]

DURATION_DOC = (
    "A duration: one or more <integer><unit> groups, units w d h hr m s "
    "(30s, 10m, 2h, 3d, 4w, 1h30m), at most 100 characters."
)


def storable(value):
    """Every string in a value (keys included) must fit a text column."""
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, list):
        for item in value:
            storable(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            storable(key)
            storable(item)
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


@lru_cache(maxsize=4096)  # a team's few addresses recur; the check is pure
def email_address(value: str) -> str:
    """An address checked by ``email-validator`` (syntax only: no DNS lookups), in lower
    case, so that one person is one address."""
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address ({exc})") from None
    return checked.normalized.lower()


Email = Annotated[
    str, StringConstraints(min_length=3, max_length=limits.EMAIL_MAX), AfterValidator(email_address)
]


class ApproverRequest(_Strict):
    email: Email = Field(description="Where the approver's personal link is sent.")
    name: str | None = Field(
        None,
        min_length=1,
        max_length=limits.APPROVER_NAME_MAX,
        description="How the approver is shown to the others (the address if none).",
    )


class CreateTokenRequest(_Strict):
    idempotencyKey: str | None = Field(
        None,
        min_length=1,
        max_length=limits.IDEMPOTENCY_KEY_MAX,
        description="Same key in the same project while not expired returns the original "
        "token with isCached: true.",
    )
    idempotencyKeyTTL: str | None = Field(
        None, description="How long the idempotency key lives. " + DURATION_DOC
    )
    timeout: str | None = Field(
        None,
        description="When the token times out: an ISO 8601 date-time with offset, or "
        + DURATION_DOC,
    )
    tags: Tag | list[Tag] | None = Field(
        None,
        description=f"At most {limits.TAGS_MAX} tags of 1..{limits.TAG_MAX} characters; kept in "
        "order, duplicates removed.",
    )
    title: str | None = Field(
        None,
        min_length=1,
        max_length=limits.TITLE_MAX,
        description="What is asked, shown as the heading.",
    )
    description: str | None = Field(
        None,
        min_length=1,
        max_length=limits.DESCRIPTION_MAX,
        description="Plain text shown on the approval page; line breaks are kept, no markup.",
    )
    details: dict[DetailKey, DetailValue] | None = Field(
        None,
        max_length=MAX_DETAILS,
        description="A flat object of at most 50 string, number or boolean values, shown as a "
        "table on the approval page.",
    )
    webhookUrl: str | None = Field(
        None,
        min_length=1,
        max_length=URL_MAX,
        description="Waitpoint extension: an http(s) URL that gets this token's events, signed "
        "with the webhookSecret of the create response.",
    )

    approvers: list[ApproverRequest] | None = Field(
        None,
        min_length=1,
        max_length=limits.APPROVERS_MAX,
        description=f"Waitpoint extension: at most {limits.APPROVERS_MAX} named approvers, each "
        "emailed a personal link; the token is then decided by them (duplicates by address are "
        "removed, addresses are kept in lower case).",
    )
    requiredApprovals: StrictInt | None = Field(
        None,
        ge=1,
        le=limits.APPROVERS_MAX,
        description="Waitpoint extension: how many distinct approvers must approve (default "
        "1, at most the number of approvers). One rejection rejects the token.",
    )
    requestedBy: Email | None = Field(
        None,
        description="Waitpoint extension: the email of who asks; shown to the approvers, and "
        "that person cannot approve their own request.",
    )
    reminders: list[str] | None = Field(
        None,
        max_length=limits.REMINDERS_MAX,
        description=f"Waitpoint extension: at most {limits.REMINDERS_MAX} durations after "
        "creation (each before the timeout): approvers who have not answered by then get a "
        "reminder email. " + DURATION_DOC,
    )
    form: dict[str, Any] | None = Field(
        None,
        description="Waitpoint extension: what the approver fills in before approving, as the "
        "restricted JSON Schema of MCP elicitation (requestedSchema): "
        '{"type": "object", "properties": {...}, "required": [...]}, at most 20 flat '
        "properties, each a string (title, description, minLength, maxLength, format email | "
        "uri | date | date-time, default, x-multiline; or enum with enumNames, or oneOf of "
        "{const, title}), a number or integer (minimum, maximum, default) or a boolean "
        "(default). Anything else is a 400 naming its path (form.properties.x.y).",
    )
    approveLabel: str | None = Field(
        None,
        min_length=1,
        max_length=limits.BUTTON_LABEL_MAX,
        description="Waitpoint extension: the Approve button's label on the page.",
    )
    rejectLabel: str | None = Field(
        None,
        min_length=1,
        max_length=limits.BUTTON_LABEL_MAX,
        description="Waitpoint extension: the Reject button's label on the page.",
    )
    timeoutOutput: Any = Field(
        None,
        description="Waitpoint extension: any JSON, the output of the token if it times out "
        "(instead of the WAITPOINT_TIMEOUT error); outputIsError stays true.",
    )

    @field_validator("idempotencyKeyTTL")
    @classmethod
    def _ttl_is_duration(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value).total_seconds() <= 0:
            raise ValueError("must be longer than zero")
        return value

    @field_validator("tags", mode="before")
    @classmethod
    def _at_most_ten(cls, value):
        # Counted before each tag is checked: 11 tags are a 422 even if one is also bad.
        if isinstance(value, list):
            distinct = {v for v in value if isinstance(v, str)} | {
                id(v) for v in value if not isinstance(v, str)
            }
            if len(distinct) > MAX_TAGS:
                raise PydanticCustomError(
                    "too_many_tags", "at most {limit} tags are allowed", {"limit": MAX_TAGS}
                )
        return value

    @field_validator("*")
    @classmethod
    def _storable_text(cls, value):
        return storable(value)

    @field_validator("reminders")
    @classmethod
    def _reminders_are_durations(cls, value: list[str] | None) -> list[str] | None:
        for text in value or ():
            if parse_duration(text).total_seconds() <= 0:
                raise ValueError("each reminder must be longer than zero")
        return value

    def tag_list(self) -> tuple[str, ...]:
        if self.tags is None:
            return ()
        tags = [self.tags] if isinstance(self.tags, str) else self.tags
        return tuple(dict.fromkeys(tags))


class CreateTokenResponse(BaseModel):
    id: str = Field(examples=["waitpoint_3x5kq0m9zq2c1b7d8f6g4h2j0"])
    url: str = Field(description="The secret callback URL: POST to it to complete the token.")
    isCached: bool
    webhookSecret: str | None = Field(
        None,
        description="Waitpoint extension: the secret that signs the events sent to the "
        "token's webhookUrl. Only when the token was created with one by this request (not "
        "on an idempotent repeat); shown once.",
    )


class TokenItem(BaseModel):
    """A token as listed (the retrieve object without its output)."""

    id: str
    url: str
    status: Status
    idempotencyKey: str | None = None
    idempotencyKeyExpiresAt: str | None = None
    timeoutAt: str | None = None
    completedAt: str | None = None
    tags: list[str]
    createdAt: str


class Decision(BaseModel):
    """An approve/reject decision made on the approval page (or the dashboard)."""

    approved: bool
    approver: str | None = Field(None, description="The name the approver gave, if any.")
    comment: str
    decidedAt: str
    source: Literal["page", "dashboard"]
    response: dict[str, Any] | None = Field(
        None, description="The response form's answers, on an approval of a token with one."
    )
    ip: str | None = None
    userAgent: str | None = None


class ApproverState(BaseModel):
    """A named approver and their vote (``decision`` null until they answer)."""

    email: str
    name: str | None = None
    decision: Literal["approved", "rejected"] | None
    decidedAt: str | None = None
    comment: str | None = None
    response: dict[str, Any] | None = Field(
        None, description="What they filled in, if the token has a form and they approved."
    )


class TokenRetrieveResponse(TokenItem):
    output: str | None = Field(None, description="The output, serialized as a JSON string.")
    outputType: Literal["application/json"] | None = None
    outputIsError: bool | None = None
    title: str | None = None
    description: str | None = None
    details: dict[str, str | bool | int | float] | None = None
    decision: Decision | None = Field(
        None,
        description="Waitpoint extension: who approved or rejected the token on the approval "
        "page, when, and from where. Omitted unless it was decided there.",
    )
    requiredApprovals: int | None = Field(
        None, description="Waitpoint extension: for a token with named approvers."
    )
    requestedBy: str | None = None
    approvers: list[ApproverState] | None = Field(
        None,
        description="Waitpoint extension: the named approvers, in the order given, and "
        "their votes so far.",
    )
    form: dict[str, Any] | None = Field(
        None, description="Waitpoint extension: the response form, as given at create."
    )
    approveLabel: str | None = None
    rejectLabel: str | None = None
    timeoutOutput: str | None = Field(
        None, description="Waitpoint extension: the time-out output, serialized as JSON."
    )


class Pagination(BaseModel):
    next: str | None = Field(None, description="Cursor for page[after]: older tokens.")
    previous: str | None = Field(None, description="Cursor for page[before]: newer tokens.")


class TokenList(BaseModel):
    data: list[TokenItem]
    pagination: Pagination


class CompleteTokenRequest(_Strict):
    model_config = ConfigDict(extra="forbid")  # data may be any JSON, so not strict
    data: Any = Field(None, description="The output. Without data the token has no output.")


class CancelTokenRequest(_Strict):
    reason: str | None = Field(
        None,
        min_length=1,
        max_length=limits.COMMENT_MAX,
        description="Why it was withdrawn: in the output's message and on the page.",
    )

    @field_validator("*")
    @classmethod
    def _storable_text(cls, value):
        return storable(value)


class CompleteTokenResponse(BaseModel):
    success: Literal[True]
    applied: bool = Field(
        description="true if this request completed the token; false if it had already been "
        "completed or timed out, in which case nothing changed."
    )
    status: Status = Field(description="The token's status after this request.")


class ErrorResponse(BaseModel):
    error: str = Field(description="What is wrong, naming the field.")


class HealthResponse(BaseModel):
    status: Literal["ok"]


class ListTokensQuery(_Strict):
    """Query parameters of the list route (validated from the query string)."""

    model_config = ConfigDict(extra="forbid", strict=False, populate_by_name=False)

    page_size: int = Field(25, alias="page[size]", ge=1, le=100)
    page_after: str | None = Field(None, alias="page[after]", max_length=64)
    page_before: str | None = Field(None, alias="page[before]", max_length=64)
    status: str | None = Field(
        None,
        alias="filter[status]",
        max_length=100,
        description="Comma list of WAITING, COMPLETED, TIMED_OUT.",
    )
    tags: str | None = Field(
        None,
        alias="filter[tags]",
        max_length=MAX_TAGS * (limits.TAG_MAX + 1) - 1,
        description="Comma list of at most 10 tags; a token matches if it has any.",
    )
    idempotency_key: str | None = Field(
        None,
        alias="filter[idempotencyKey]",
        min_length=1,
        max_length=limits.IDEMPOTENCY_KEY_MAX,
    )
    period: str | None = Field(
        None,
        alias="filter[createdAt][period]",
        max_length=MAX_DURATION_CHARS,
        description="Created within. " + DURATION_DOC,
    )
    created_from: str | None = Field(
        None,
        alias="filter[createdAt][from]",
        max_length=64,
        description="ISO date-time or epoch milliseconds.",
    )
    created_to: str | None = Field(
        None,
        alias="filter[createdAt][to]",
        max_length=64,
        description="ISO date-time or epoch milliseconds.",
    )
    approver: str | None = Field(
        None,
        alias="filter[approver]",
        max_length=limits.EMAIL_MAX,
        description="Waitpoint extension: tokens on which this named approver (an email) "
        "has not voted yet.",
    )

    @field_validator("period")
    @classmethod
    def _period_is_duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("status")
    @classmethod
    def _known_statuses(cls, value: str | None) -> str | None:
        if value is None:
            return None
        unknown = [s for s in value.split(",") if s not in STATUSES]
        if unknown:
            raise ValueError(f"unknown status {unknown[0]!r} (use WAITING, COMPLETED or TIMED_OUT)")
        return value

    @field_validator("tags")
    @classmethod
    def _tag_list(cls, value: str | None) -> str | None:
        if value is None:
            return None
        tags = value.split(",")
        if any(not t or len(t) > limits.TAG_MAX for t in tags):
            raise ValueError(f"each tag must be 1..{limits.TAG_MAX} characters")
        for tag in tags:
            tag_rules(tag)
        if len(set(tags)) > MAX_TAGS:
            raise ValueError(f"at most {MAX_TAGS} tags")
        return value

    @field_validator("*")
    @classmethod
    def _storable_text(cls, value):
        return storable(value)

    @field_validator("approver")
    @classmethod
    def _approver_email(cls, value: str | None) -> str | None:
        return email_address(value) if value is not None else None

    def statuses(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.status.split(","))) if self.status else ()

    def tag_list(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.tags.split(","))) if self.tags else ()


# -- webhooks ----------------------------------------------------------------------

EventType = Literal["waitpoint.created", "waitpoint.completed", "waitpoint.timed_out"]
EVENT_TYPES_DOC = "Event types to send; omitted or [] means every type."


class CreateWebhookRequest(_Strict):
    url: str = Field(
        min_length=1, max_length=URL_MAX, description="Where to POST events: an http(s) URL."
    )
    eventTypes: list[EventType] | None = Field(None, description=EVENT_TYPES_DOC)

    @field_validator("*")
    @classmethod
    def _storable_text(cls, value):
        return storable(value)


class UpdateWebhookRequest(_Strict):
    url: str | None = Field(None, min_length=1, max_length=URL_MAX)
    eventTypes: list[EventType] | None = Field(None, description=EVENT_TYPES_DOC)
    enabled: bool | None = Field(
        None, description="false stops sending; true sends again and clears the failure streak."
    )

    @field_validator("*")
    @classmethod
    def _storable_text(cls, value):
        return storable(value)


class WebhookEndpointItem(BaseModel):
    id: int
    url: str
    eventTypes: list[EventType] = Field(description="[] means every type.")
    enabled: bool
    disabledReason: str | None = None
    failingSince: str | None = Field(
        None, description="Since when every delivery has failed; omitted after a success."
    )
    createdAt: str


class WebhookEndpointWithSecret(WebhookEndpointItem):
    secret: str = Field(description="whsec_...: signs the deliveries. Shown only here.")


class WebhookEndpointList(BaseModel):
    data: list[WebhookEndpointItem]


class DeliveryAttemptItem(BaseModel):
    attemptedAt: str
    durationMs: float
    statusCode: int | None = None
    response: str | None = Field(None, description="The first bytes of the response body.")
    error: str | None = Field(None, description="A timeout, a refused address, ...")


class DeliveryItem(BaseModel):
    id: int
    eventId: str = Field(description="evt_<n>: the event, as the webhook-id header names it.")
    eventType: EventType
    tokenId: str
    endpointId: int | None = Field(
        None, description="Omitted for a delivery to the token's own webhookUrl."
    )
    url: str
    status: Literal["pending", "delivered", "failed"]
    createdAt: str
    nextAttemptAt: str | None = None
    deliveredAt: str | None = None
    attempts: list[DeliveryAttemptItem]


class DeliveryList(BaseModel):
    data: list[DeliveryItem]


class ListDeliveriesQuery(_Strict):
    model_config = ConfigDict(extra="forbid", strict=False)

    limit: int = Field(50, ge=1, le=100, description="How many of the newest deliveries.")
