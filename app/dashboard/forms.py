"""Dashboard forms (Flask-WTF: CSRF on every POST)."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

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
