"""Dashboard forms (Flask-WTF: CSRF on every POST)."""

from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    PasswordField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from ..domain import webhooks
from ..domain.jsontext import parse_json


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
            raise ValidationError(f"{exc}.") from None


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
