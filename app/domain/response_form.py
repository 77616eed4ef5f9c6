"""Response forms (a Waitpoint extension): what an approver fills in before approving.

A token's ``form`` is the restricted JSON Schema that MCP uses for elicitation
(``requestedSchema``): an object of at most 20 flat properties, each a string (with an
optional ``format``, or an ``enum``/``oneOf`` of choices), a number, an integer or a
boolean, plus ``required``. The ``jsonschema`` library is the judge on both sides:

- at create, ``check_schema`` validates the schema against ``META_SCHEMA`` (and as a JSON
  Schema of its own), then that each ``default`` fits its property; a problem is a
  ``FormSchemaError`` naming its path (``form.properties.amount.minimum``);
- at submit, ``check_answers`` validates the approver's answers against the schema, with
  format checks (email, uri, date, date-time), and names each field that is wrong.

Long text: a string property with ``"x-multiline": true``, or with a ``maxLength`` over
``MULTILINE_OVER``, is a multi-line box on the page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match

MAX_PROPERTIES = 20
MULTILINE_OVER = 200  # a maxLength above this makes a string a multi-line box
FORMATS = ("email", "uri", "date", "date-time")
TEXT_MAX = 10_000  # characters in a string answer without a maxLength of its own
LABEL_MAX = 40  # approveLabel, rejectLabel

_COMMON = {
    "title": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": {"type": "string", "minLength": 1, "maxLength": 1000},
}
_CHOICE = {"type": "string", "minLength": 1, "maxLength": 200}
META_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["type", "properties"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "object"},
        "title": _COMMON["title"],
        "description": _COMMON["description"],
        "properties": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": MAX_PROPERTIES,
            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"},
            "additionalProperties": {"$ref": "#/$defs/property"},
        },
        "required": {
            "type": "array",
            "items": {"type": "string"},
            "uniqueItems": True,
            "maxItems": MAX_PROPERTIES,
        },
    },
    "$defs": {
        "property": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": ["string", "number", "integer", "boolean"]}},
            "allOf": [
                {
                    "if": {"properties": {"type": {"const": "string"}}},
                    "then": {"$ref": "#/$defs/string"},
                },
                {
                    "if": {"properties": {"type": {"enum": ["number", "integer"]}}},
                    "then": {"$ref": "#/$defs/number"},
                },
                {
                    "if": {"properties": {"type": {"const": "boolean"}}},
                    "then": {"$ref": "#/$defs/boolean"},
                },
            ],
        },
        "string": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "type": {"const": "string"},
                **_COMMON,
                "minLength": {"type": "integer", "minimum": 0, "maximum": TEXT_MAX},
                "maxLength": {"type": "integer", "minimum": 1, "maximum": TEXT_MAX},
                "format": {"enum": list(FORMATS)},
                "default": {"type": "string", "maxLength": TEXT_MAX},
                "x-multiline": {"type": "boolean"},
                "enum": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 50,
                    "uniqueItems": True,
                    "items": _CHOICE,
                },
                "enumNames": {"type": "array", "maxItems": 50, "items": _CHOICE},
                "oneOf": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 50,
                    "items": {
                        "type": "object",
                        "required": ["const"],
                        "additionalProperties": False,
                        "properties": {"const": _CHOICE, "title": _CHOICE},
                    },
                },
            },
        },
        "number": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "type": {"enum": ["number", "integer"]},
                **_COMMON,
                "minimum": {"type": "number"},
                "maximum": {"type": "number"},
                "default": {"type": "number"},
            },
        },
        "boolean": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"type": {"const": "boolean"}, **_COMMON, "default": {"type": "boolean"}},
        },
    },
}
_META = Draft202012Validator(META_SCHEMA)
_FORMATS = FormatChecker(FORMATS)


class FormSchemaError(ValueError):
    """A ``form`` that is not one we take: ``path`` is where (``form.properties.x.type``)."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Property:
    """One property of a form, as the page renders it."""

    name: str
    type: str  # string | number | integer | boolean
    title: str
    description: str | None
    required: bool
    default: object
    format: str | None = None
    multiline: bool = False
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) of an enum or oneOf
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None


def _path(parts) -> str:
    return ".".join(["form", *(str(p) for p in parts)])


def check_schema(schema) -> dict:
    """``schema`` if it is a form we take, else ``FormSchemaError`` at the first problem."""
    error = _deepest(_META.iter_errors(schema))
    if error is not None:
        raise _schema_error(error)
    Draft202012Validator.check_schema(schema)  # a JSON Schema of its own, too
    names = schema["properties"]
    for i, name in enumerate(schema.get("required", [])):
        if name not in names:
            raise FormSchemaError(_path(["required", i]), f"{name!r} is not a property")
    for name, spec in names.items():
        _check_property(name, spec)
    return schema


def _deepest(errors) -> ValidationError | None:
    """The error deepest in the schema: it names the exact key at fault (the library's
    ``best_match`` prefers shallow ones, for documents rather than schemas)."""
    found = None
    for error in errors:
        while error.context:  # if/then, allOf: the reason is inside
            error = max(error.context, key=lambda e: len(e.absolute_path))
        if found is None or len(error.absolute_path) > len(found.absolute_path):
            found = error
    return found


def _schema_error(error: ValidationError) -> FormSchemaError:
    where = list(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = error.schema.get("properties", {})
        extra = sorted(set(error.instance) - set(allowed))
        if extra:
            return FormSchemaError(_path([*where, extra[0]]), "is not allowed here")
    if error.validator == "pattern" and error.validator_value.startswith("^[A-Za-z_]"):
        return FormSchemaError(
            _path([*where, error.instance]),
            "a property name is 1..64 letters, digits, _ . - (a letter or _ first)",
        )
    return FormSchemaError(_path(where), error.message)


def _check_property(name: str, spec: dict) -> None:
    where = ["properties", name]
    if "minLength" in spec and "maxLength" in spec and spec["minLength"] > spec["maxLength"]:
        raise FormSchemaError(_path([*where, "minLength"]), "is more than maxLength")
    if "minimum" in spec and "maximum" in spec and spec["minimum"] > spec["maximum"]:
        raise FormSchemaError(_path([*where, "minimum"]), "is more than maximum")
    if "enum" in spec and "oneOf" in spec:
        raise FormSchemaError(_path([*where, "oneOf"]), "use either enum or oneOf, not both")
    if "enumNames" in spec and len(spec["enumNames"]) != len(spec.get("enum", [])):
        raise FormSchemaError(_path([*where, "enumNames"]), "must have one name per enum value")
    if ("enum" in spec or "oneOf" in spec) and "format" in spec:
        raise FormSchemaError(_path([*where, "format"]), "does not go with a list of choices")
    if "default" in spec:
        checker = Draft202012Validator(spec, format_checker=_FORMATS)
        error = best_match(checker.iter_errors(spec["default"]))
        if error is not None:
            raise FormSchemaError(_path([*where, "default"]), error.message)


@lru_cache(maxsize=256)
def properties_of(form_json: str) -> tuple[Property, ...]:
    """The properties of a stored form (its JSON text), in order, ready to render."""
    schema = json.loads(form_json)
    required = set(schema.get("required", []))
    found = []
    for name, spec in schema["properties"].items():
        choices = ()
        if "enum" in spec:
            labels = spec.get("enumNames") or spec["enum"]
            choices = tuple(zip(spec["enum"], labels, strict=True))
        elif "oneOf" in spec:
            choices = tuple((c["const"], c.get("title", c["const"])) for c in spec["oneOf"])
        found.append(
            Property(
                name=name,
                type=spec["type"],
                title=spec.get("title") or name,
                description=spec.get("description"),
                required=name in required,
                default=spec.get("default"),
                format=spec.get("format"),
                multiline=bool(spec.get("x-multiline"))
                or spec.get("maxLength", 0) > MULTILINE_OVER,
                choices=choices,
                min_length=spec.get("minLength"),
                max_length=spec.get("maxLength"),
                minimum=spec.get("minimum"),
                maximum=spec.get("maximum"),
            )
        )
    return tuple(found)


@lru_cache(maxsize=256)
def _validator(form_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(form_json), format_checker=_FORMATS)


def check_answers(form_json: str, answers: dict) -> dict[str, str]:
    """What is wrong with ``answers``, by property name (empty: they are valid)."""
    problems: dict[str, str] = {}
    for error in _validator(form_json).iter_errors(answers):
        if error.validator == "required":
            for name in json.loads(form_json).get("required", []):
                if name not in answers:
                    problems.setdefault(name, "This field is required.")
            continue
        if error.path:
            problems.setdefault(str(error.path[0]), _answer_message(error))
    return problems


_FORMAT_MESSAGES = {
    "email": "Enter an email address.",
    "uri": "Enter a full URL (https://...).",
    "date": "Enter a date.",
    "date-time": "Enter a date and time.",
}
_TYPE_MESSAGES = {"integer": "Enter a whole number.", "number": "Enter a number."}


def _answer_message(error: ValidationError) -> str:
    value = error.validator_value  # a list for enum and oneOf: never a key to look up
    if error.validator == "format":
        return _FORMAT_MESSAGES.get(value, "This is not in the expected format.")
    if error.validator == "type":
        return _TYPE_MESSAGES.get(value, f"Must be a {value}.")
    return {
        "minLength": f"Enter at least {value} characters.",
        "maxLength": f"Enter at most {value} characters.",
        "minimum": f"Enter {value} or more.",
        "maximum": f"Enter {value} or less.",
        "enum": "Choose one of the options.",
        "oneOf": "Choose one of the options.",
    }.get(error.validator, error.message)
