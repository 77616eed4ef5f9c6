"""The approve/reject form."""

from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField, TextAreaField
from wtforms.validators import Length, Optional

from ..web.security import storable_text

NAME_MAX = 100
COMMENT_MAX = 2000


class DecisionForm(FlaskForm):
    approver = StringField(
        "Your name (optional)",
        validators=[Optional(), Length(max=NAME_MAX), storable_text],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
    )
    comment = TextAreaField(
        "Comment (optional)",
        validators=[Optional(), Length(max=COMMENT_MAX), storable_text],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
    )
    approve = SubmitField("Approve")
    reject = SubmitField("Reject")

    def choice(self) -> bool | None:
        """True to approve, False to reject, None if neither button was used."""
        if self.approve.data and not self.reject.data:
            return True
        if self.reject.data and not self.approve.data:
            return False
        return None
