"""Forms of the Self Service Portal; labels and messages are translated when shown."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, StringField
from wtforms.validators import DataRequired, Length

from portal.vocabulary import UserSource


class SignInForm(FlaskForm):
    """User name and password, for a Local or an Active Directory account."""

    method = RadioField(_l("Account"), choices=[(UserSource.LDAP, _l("Company account (Active Directory)")),
                                               (UserSource.LOCAL, _l("Local account"))],
                        validate_choice=False)
    username = StringField(_l("User name"), validators=[
        DataRequired(_l("Enter your user name.")),
        Length(max=256, message=_l("The user name is too long."))],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"})
    password = PasswordField(_l("Password"), validators=[
        DataRequired(_l("Enter your password.")),
        Length(max=1024, message=_l("The password is too long."))],
        render_kw={"autocomplete": "current-password"})


class StartForm(FlaskForm):
    """Start: a POST with a CSRF token and nothing else."""
