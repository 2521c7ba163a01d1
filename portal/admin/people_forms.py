"""Forms of Admin → Users, Administrators, Licenses and the admin's own password. The field
names are the domain's (portal.accounts), so its messages land beside their fields; the forms
check only lengths and types, the domain every rule."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, RadioField, SelectField, StringField
from wtforms.validators import InputRequired, Length, Optional, StopValidation

from portal.vocabulary import AdminRole, UserSource
from portal.web.forms import FilterForm, strip

_NEW_PASSWORD = {"autocomplete": "new-password"}
MAX_LICENSES = 10_000_000  # as portal.licensing.seats.set_total
_OFF = {"autocomplete": "off", "spellcheck": "false"}


def _username():
    return StringField("User name", filters=[strip], validators=[Optional(), Length(
        max=64, message="The user name must have at most 64 characters.")], render_kw=_OFF)


def _email():
    return StringField("Email", filters=[strip], validators=[Optional(), Length(
        max=254, message="The email address must have at most 254 characters.")],
        render_kw={"type": "email", "autocomplete": "off"})


def _password(label="Password"):
    return PasswordField(label, validators=[Optional(), Length(
        max=1024, message="The password must have at most 1024 characters.")],
        render_kw=_NEW_PASSWORD)


def _display_name():
    return StringField("Display name", filters=[strip], validators=[Optional(), Length(
        max=256, message="The display name must have at most 256 characters.")],
        render_kw={"autocomplete": "off"})


def _role():
    return RadioField("Role", default=AdminRole.ADMINISTRATOR, choices=[
        (AdminRole.ADMINISTRATOR, "Administrator"), (AdminRole.HELPDESK, "Helpdesk")],
        validate_choice=False)


class UserSearchForm(FilterForm):
    q = StringField("Search", filters=[strip], validators=[Optional(), Length(max=128)])
    source = SelectField("Source", default="", validate_choice=False, choices=[
        ("", "All users"), (UserSource.LOCAL, "Local"), (UserSource.LDAP, "Active Directory"),
        (UserSource.AZURE, "Azure AD")])


class AddUserForm(FlaskForm):
    username = _username()
    display_name = _display_name()
    email = _email()
    password = _password()


class EditUserForm(FlaskForm):
    display_name = _display_name()
    email = _email()


class PasswordForm(FlaskForm):
    """An Administrator sets someone else's password."""
    password = _password("New password")


class AddAdministratorForm(FlaskForm):
    username = _username()
    email = _email()
    password = _password()
    role = _role()
    mail_recipient = BooleanField("Mail recipient")


class EditAdministratorForm(FlaskForm):
    email = _email()
    role = _role()
    mail_recipient = BooleanField("Mail recipient")


class OwnPasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[Optional(), Length(
        max=1024, message="The password must have at most 1024 characters.")],
        render_kw={"autocomplete": "current-password"})
    password = _password("New password")


class LicensesForm(FlaskForm):
    total = IntegerField("Total licenses", validators=[
        InputRequired("Enter the number of licenses, 0 or more.")],
        render_kw={"min": 0, "max": MAX_LICENSES, "inputmode": "numeric"})

    def validate_total(self, field):
        if field.data is None:
            raise StopValidation()  # "Not a valid integer value." is there already
        if not 0 <= field.data <= MAX_LICENSES:
            raise StopValidation("The number of licenses must be 0 to 10,000,000.")
