"""Dashboard forms (Flask-WTF: CSRF on every POST; the board's GET filter is a plain
WTForms form)."""

import json

from email_validator import EmailNotValidError, validate_email
from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    Form,
    PasswordField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from ..domain import webhooks
from ..domain.jsontext import parse_json
from ..domain.limits import COMMENT_MAX, EMAIL_MAX
from ..web.forms import VoteForm, with_response
from ..web.security import storable_text


def _stripped(value):
    return value.strip() if isinstance(value, str) else value


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])


class CompleteForm(FlaskForm):
    output = TextAreaField("Output (JSON)", validators=[DataRequired(), Length(max=1_000_000)])
    submit = SubmitField("Confirm completion")

    def validate_output(self, field):
        try:
            self.parsed = parse_json(field.data)
        except ValueError as exc:
            raise ValidationError(f"This {exc}{_where(field.data)}.") from None


def _where(text: str) -> str:
    """Where plain ``json`` stops reading ``text``: ``: line 2, column 5 (Expecting ',')``;
    nothing for what it reads but we refuse (NaN, nesting) - the message says that."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f": line {exc.lineno}, column {exc.colno} ({exc.msg})"
    except (ValueError, RecursionError):
        pass
    return ""


class OperatorDecisionForm(VoteForm):
    """Approve or reject from a token's page: the operator is recorded by their account,
    so no name to give. ``decision_form`` adds the token's response form, if any."""

    response = None  # the response form's answers, set by a valid approval


def decision_form(form_json: str | None, **kwargs) -> OperatorDecisionForm:
    """The decision form of a token with this response form (None: yes or no only)."""
    return with_response(OperatorDecisionForm, form_json)(**kwargs)


class WithdrawForm(FlaskForm):
    """Withdraw a waiting token, as the API's cancel does: the reason is optional."""

    reason = TextAreaField(
        "Reason (optional)",
        validators=[Optional(), Length(max=COMMENT_MAX), storable_text],
        filters=[_stripped],
    )
    submit = SubmitField("Confirm: withdraw")


class TimeoutForm(FlaskForm):
    submit = SubmitField("Confirm: time out now")


class LogoutForm(FlaskForm):
    submit = SubmitField("Log out")


class CheckboxesField(SelectMultipleField):
    """Several choices as checkboxes (``_forms.field`` renders them in a fieldset)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class EndpointForm(FlaskForm):
    url = StringField(
        "Endpoint URL",
        validators=[DataRequired("Enter the URL to send events to."), Length(max=webhooks.URL_MAX)],
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
    )
    event_types = CheckboxesField(
        "Events to send",
        choices=[SelectChoice(t) for t in webhooks.EVENT_TYPES],
        default=list(webhooks.EVENT_TYPES),
    )
    submit = SubmitField("Add endpoint")

    def validate_url(self, field):
        try:
            webhooks.check_url(field.data)
        except webhooks.WebhookError as exc:
            message = str(exc).removeprefix("url: ")
            raise ValidationError(f"The URL {message}.") from None

    def validate_event_types(self, field):
        if not field.data:
            raise ValidationError("Choose at least one event type.")

    def chosen_types(self) -> list[str]:
        """What to store: [] (every type, present and future) when all are chosen."""
        chosen = self.event_types.data
        return [] if set(chosen) >= set(webhooks.EVENT_TYPES) else chosen


class ActionForm(FlaskForm):
    """A button that changes state: only the CSRF token to check."""


class ApproverFilterForm(Form):
    """The board's "waiting on" filter, read from the query string (a GET: no CSRF)."""

    approver = EmailField(
        "Waiting on approver",
        validators=[Optional(), Length(max=EMAIL_MAX)],
        filters=[_stripped],
    )

    def validate_approver(self, field):
        """As the API reads ``filter[approver]``: syntax only, in lower case."""
        try:
            checked = validate_email(field.data, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValidationError(
                f"Not an email address: {exc} Enter one like ada@example.com; until then "
                "the board is not filtered by approver."
            ) from None
        field.data = checked.normalized.lower()
