"""Forms of the Self Service Portal."""
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LocalSignInForm(FlaskForm):
    username = StringField("User name", validators=[DataRequired(), Length(max=256)],
                           render_kw={"autocomplete": "username", "autocapitalize": "none",
                                      "spellcheck": "false"})
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})


class StartForm(FlaskForm):
    """Start: a POST with a CSRF token and nothing else."""
