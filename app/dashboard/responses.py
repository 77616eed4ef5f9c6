"""A token's response form on its dashboard page: what the form asks, and the answers
given (the decision's, and each named approver's), as rows ready to render."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..domain.response_form import Property, properties_of
from ..domain.stored import StoredToken

_KINDS = {
    "email": "Email address",
    "uri": "URL",
    "date": "Date",
    "date-time": "Date and time (UTC)",
}


@dataclass(frozen=True)
class Answer:
    """One row of a response: the property's title and its answer as shown (None: not
    answered); ``value`` is the stored value when the label shown differs from it."""

    title: str
    text: str | None
    value: str | None = None


@dataclass(frozen=True)
class Asked:
    """One field the form asks for, in words."""

    title: str
    name: str
    kind: str
    rules: tuple[str, ...]
    description: str | None


class AskedForm:
    """A token's response form (its JSON text), as the detail page shows it."""

    def __init__(self, form_json: str):
        self.properties = properties_of(form_json)
        self.schema = json.dumps(json.loads(form_json), indent=2, ensure_ascii=False)

    def fields(self) -> list[Asked]:
        return [_asked(prop) for prop in self.properties]

    def answers(self, response: dict | None) -> list[Answer]:
        """Each property's answer in the form's order; a key the form does not name
        (none should be) after them, so that nothing stored is hidden."""
        if response is None:
            return []
        rows = [_answer(prop, response) for prop in self.properties]
        named = {prop.name for prop in self.properties}
        rows += [Answer(k, _text(v)) for k, v in response.items() if k not in named]
        return rows


def of_token(token: StoredToken) -> AskedForm | None:
    return AskedForm(token.form_json) if token.form_json is not None else None


def decision_response(token: StoredToken) -> dict | None:
    """The answers of an approval, from its output (as the API's ``decision.response``)."""
    if token.form_json is None or token.output is None or not token.approved:
        return None
    output = json.loads(token.output)
    response = output.get("response") if isinstance(output, dict) else None
    return response if isinstance(response, dict) else None


def _answer(prop: Property, response: dict) -> Answer:
    if prop.name not in response:
        return Answer(prop.title, None)
    value = response[prop.name]
    label = dict(prop.choices).get(value) if prop.choices else None
    if label is not None and label != value:
        return Answer(prop.title, label, value)
    return Answer(prop.title, _text(value))


def _text(value) -> str:
    if value is True:
        return "Yes"
    if value is False:
        return "No"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _asked(prop: Property) -> Asked:
    rules = ["required" if prop.required and prop.type != "boolean" else "optional"]
    if prop.type == "boolean":
        kind, rules = "Yes or no (a checkbox)", []
    elif prop.choices:
        kind = "One of: " + ", ".join(label for _, label in prop.choices)
    elif prop.type in ("number", "integer"):
        kind = "Whole number" if prop.type == "integer" else "Number"
        if prop.minimum is not None:
            rules.append(f"at least {_number(prop.minimum)}")
        if prop.maximum is not None:
            rules.append(f"at most {_number(prop.maximum)}")
    else:
        kind = _KINDS.get(prop.format, "Text, several lines" if prop.multiline else "Text")
        if prop.min_length:
            rules.append(f"at least {prop.min_length} characters")
        if prop.max_length is not None:
            rules.append(f"at most {prop.max_length} characters")
    if prop.default is not None:
        default = dict(prop.choices).get(prop.default, prop.default)  # a choice's label
        rules.append(f"default: {_shortened(_text(default))}")
    return Asked(prop.title, prop.name, kind, tuple(rules), prop.description)


def _shortened(text: str, limit: int = 80) -> str:
    """A default in the list of fields: a long text's start (the schema below has it all)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
