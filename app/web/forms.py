"""Forms more than one blueprint uses (Flask-WTF: CSRF on every POST)."""

from __future__ import annotations

from functools import lru_cache

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from ..domain import response_form
from ..domain.limits import APPROVER_NAME_MAX, COMMENT_MAX
from .security import storable_text


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class VoteForm(FlaskForm):
    """Approve or reject, with an optional comment: a named approver on their personal
    page (who they are is the link's), and the base of ``DecisionForm``."""

    comment = TextAreaField(
        "Comment (optional)",
        validators=[Optional(), Length(max=COMMENT_MAX), storable_text],
        filters=[_strip],
    )
    approve = SubmitField("Approve")
    reject = SubmitField("Reject")

    def choice(self) -> bool | None:
        """True to approve, False to reject, None if neither button (or both) was used."""
        if self.approve.data and not self.reject.data:
            return True
        if self.reject.data and not self.approve.data:
            return False
        return None

    def validated_choice(self, missing: str = "Choose Approve or Reject.") -> bool | None:
        """The choice of a valid submission; else None, with ``missing`` as the form's
        error when no field has one of its own."""
        choice = self.choice() if self.validate_on_submit() else None
        if choice is None and not self.errors:
            self.form_errors.append(missing)
        return choice


class DecisionForm(VoteForm):
    """``VoteForm`` and a name: an approver on the callback URL's page (who may give a
    name), or an operator on the dashboard (recorded by their account)."""

    approver = StringField(
        "Your name (optional)",
        validators=[Optional(), Length(max=APPROVER_NAME_MAX), storable_text],
        filters=[_strip],
    )


# -- response forms ------------------------------------------------------------------


class ResponseFields:
    """What ``with_response`` adds to a decision form: a field per property of the token's
    response form (``domain.response_form``), named ``response_<i>``. WTForms only reads
    and renders them; the answers are judged by the JSON Schema (``check_answers``), and
    only for an approval: a rejection needs nothing but its optional comment."""

    form_json: str
    properties: tuple

    def response_fields(self) -> list:
        return [self[f"response_{i}"] for i in range(len(self.properties))]

    def validated_choice(self, missing: str = "Choose Approve or Reject.") -> bool | None:
        choice = super().validated_choice(missing)
        if choice is not True:
            for f in self.response_fields():
                f.errors = []
            self._errors = None
            return choice
        answers, problems = self._answers()
        # What could not be read as its type says so; the schema judges everything else.
        problems = {**response_form.check_answers(self.form_json, answers), **problems}
        if problems:
            for i, prop in enumerate(self.properties):
                if prop.name in problems:
                    self[f"response_{i}"].errors = [problems[prop.name]]
            self._errors = None
            return None
        self.response = answers
        return choice

    def _answers(self) -> tuple[dict, dict[str, str]]:
        """The answers as JSON values (an empty optional answer is left out), and what
        could not be read as its type at all."""
        answers, problems = {}, {}
        for prop, f in zip(self.properties, self.response_fields(), strict=True):
            if prop.type == "boolean":
                answers[prop.name] = bool(f.data)
                continue
            text = f.data if isinstance(f.data, str) else ""
            # Browsers send a box's line breaks as CRLF: the answer keeps them as typed, \n.
            text = text.replace("\r\n", "\n") if prop.multiline else text.strip()
            if text == "":
                continue
            if prop.type in ("number", "integer"):
                try:
                    answers[prop.name] = _number(text, prop.type == "integer")
                except ValueError:
                    whole = "a whole number" if prop.type == "integer" else "a number"
                    problems[prop.name] = f"Enter {whole}."
            elif prop.format == "date-time":
                answers[prop.name] = _utc_date_time(text)
            else:
                answers[prop.name] = text
        return answers, problems


def _number(text: str, whole: bool) -> int | float:
    if whole:
        return int(text)
    number = float(text)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(text)
    return int(text) if text.lstrip("+-").isdigit() else number


def _utc_date_time(text: str) -> str:
    """``2026-12-01T09:30`` from a ``datetime-local`` input, as UTC with seconds; anything
    else as typed (the schema's format check names it)."""
    if len(text) == 16 and text[10] == "T":
        return text + ":00Z"
    if len(text) == 19 and text[10] == "T":
        return text + "Z"
    return text


def _local_input_value(value) -> str | None:
    """A ``date-time`` default (with an offset) as a ``datetime-local`` value, in UTC."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M")


_INPUT_TYPES = {"email": "email", "uri": "url", "date": "date", "date-time": "datetime-local"}


def _field_for(prop):
    """A WTForms field that reads and renders one property (no validators of its own)."""
    render = {}
    if prop.required and prop.type != "boolean":
        render["required"] = True
    kwargs = {"label": prop.title, "description": prop.description or "", "render_kw": render}
    if prop.type == "boolean":
        return BooleanField(default=bool(prop.default), **kwargs)
    if prop.choices:
        choices = [SelectChoice(value, label) for value, label in prop.choices]
        if len(choices) <= 5:
            return RadioField(
                choices=choices, default=prop.default, validate_choice=False, **kwargs
            )
        if not prop.required or prop.default is None:
            choices = [SelectChoice("", "Choose…"), *choices]
        return SelectField(choices=choices, default=prop.default, validate_choice=False, **kwargs)
    if prop.type in ("number", "integer"):
        render.update(type="number", step="1" if prop.type == "integer" else "any")
        if prop.minimum is not None:
            render["min"] = prop.minimum
        if prop.maximum is not None:
            render["max"] = prop.maximum
        default = None if prop.default is None else str(prop.default)
        return StringField(default=default, filters=[_strip], **kwargs)
    if prop.max_length is not None:
        render["maxlength"] = prop.max_length
    if prop.min_length:
        render["minlength"] = prop.min_length
    default = prop.default
    if prop.format == "date-time" and default is not None:
        default = _local_input_value(default)
    if prop.format in _INPUT_TYPES:
        render["type"] = _INPUT_TYPES[prop.format]
    if prop.multiline:  # tall enough for the draft it holds, within reason
        lines = str(default or "").count("\n") + len(str(default or "")) // 60 + 2
        render.setdefault("rows", min(16, max(6, lines)))
        return TextAreaField(default=default, **kwargs)
    return StringField(default=default, **kwargs)


def with_response(form_class, form_json: str | None):
    """``form_class``, with the fields of a token's response form if it has one."""
    return form_class if form_json is None else _with_response(form_class, form_json)


@lru_cache(maxsize=256)
def _with_response(form_class, form_json: str):
    properties = response_form.properties_of(form_json)
    fields = {f"response_{i}": _field_for(prop) for i, prop in enumerate(properties)}
    namespace = {"form_json": form_json, "properties": properties, "response": None, **fields}
    return type(f"Response{form_class.__name__}", (ResponseFields, form_class), namespace)
