"""Forms more than one blueprint uses (Flask-WTF: CSRF on every POST)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField, TextAreaField
from wtforms.validators import Length, Optional

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
