"""Forms of the Management Console."""
from flask_wtf import FlaskForm
from wtforms import (BooleanField, HiddenField, IntegerField, PasswordField, RadioField,
                     SelectField, StringField)
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.widgets import PasswordInput

from portal.accounts.directory import picked_user
from portal.provisioning.qr_codes import UNLIMITED, QrCodeRequest


_NO_DIRECTORY = ("No directory is configured: set up Active Directory under Admin → Sign-in "
                 "methods before choosing LDAP users, or choose User Type Local.")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class LoginForm(FlaskForm):
    username = StringField("User name", validators=[DataRequired(), Length(max=64)],
                           render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})
    next = HiddenField()


class EmptyForm(FlaskForm):
    """A CSRF token and nothing else, for buttons that only POST."""


class QrCodeForm(FlaskForm):
    """Advanced QR-Code Provisioning: the visible names are the ones PRODUCT.md §2 uses."""

    option = RadioField("Enrollment option", default="ssp", choices=[
        ("ssp", "Self Service Portal"), ("auto", "Automatic Provisioning")])
    user_type = RadioField("User Type", default="local", choices=[
        ("ldap", "LDAP"), ("local", "Local")])
    username = StringField("User", filters=[_strip], validators=[Optional(), Length(max=256)],
                           render_kw={"autocomplete": "off"})
    ldap_bind = StringField("Bind DN or user name", filters=[_strip],
                            validators=[Optional(), Length(max=512)],
                            render_kw={"autocomplete": "off"})
    ldap_password = PasswordField("LDAP password", validators=[Optional(), Length(max=1024)],
                                  render_kw={"autocomplete": "off"})
    # The directory user chosen from a search, as a signed token (see accounts.directory).
    ldap_user = HiddenField()
    lang = SelectField("Localization", choices=[])
    usage_count = IntegerField("Usage Count", default=1, validators=[
        Optional(), NumberRange(min=1, message="Usage Count must be 1 or more.")])
    network = RadioField("Network Type", default="wifi", choices=[
        ("wifi", "Wi-Fi"), ("mobile", "Mobile data")])
    wifi_ssid = StringField("SSID", validators=[Optional(), Length(max=128)],
                            render_kw={"autocomplete": "off", "spellcheck": "false"})
    wifi_security = SelectField("Security Type", default="WPA", choices=[
        ("WPA", "WPA"), ("WEP", "WEP"), ("NONE", "None")])
    wifi_password = PasswordField("Password", widget=PasswordInput(hide_value=False),
                                  validators=[Optional(), Length(max=128)],
                                  render_kw={"autocomplete": "off"})
    wifi_hidden = BooleanField("Hidden network")
    send_to_user = BooleanField("Send QR-Code to User")
    send_alternative = BooleanField("Send Notification to Alternative Address")
    alternative_email = StringField("Alternative address", filters=[_strip],
                                    validators=[Optional(), Length(max=254)],
                                    render_kw={"type": "email", "autocomplete": "off"})
    define_otp = BooleanField("Define OTP")
    otp_validity_hours = IntegerField("OTP validity (hours)", validators=[
        Optional(), NumberRange(min=1, max=87600,
                                message="The OTP validity must be 1 to 87,600 hours.")])
    otp_unlimited = BooleanField("Unlimited")

    has_directory = False  # set by the view: is an LDAP directory configured?

    def chosen(self, name: str) -> str:
        """The current value of a choice, falling back to its default for a fresh form."""
        field = getattr(self, name)
        return field.data or field.default

    def to_request(self) -> QrCodeRequest:
        """The domain's request from what is visible for the choices made."""
        auto, wifi = self.chosen("option") == "auto", self.chosen("network") == "wifi"
        security = self.wifi_security.data if wifi else None
        validity = None
        if auto and self.define_otp.data:
            validity = UNLIMITED if self.otp_unlimited.data else self.otp_validity_hours.data
        local = auto and self.chosen("user_type") == "local"
        return QrCodeRequest(
            option=self.chosen("option"), lang=self.lang.data, network=self.chosen("network"),
            wifi_ssid=self.wifi_ssid.data if wifi else None, wifi_security=security,
            wifi_password=(self.wifi_password.data or None) if security != "NONE" else None,
            wifi_hidden=bool(wifi and self.wifi_hidden.data),
            username=self.username.data if local else None,
            usage_count=self.usage_count.data if auto else None,
            send_to_user=bool(auto and self.send_to_user.data),
            alternative_email=(self.alternative_email.data or None)
            if self.send_alternative.data else None,
            otp_validity=validity)

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        auto = self.chosen("option") == "auto"
        if auto and self.chosen("user_type") == "local" and not self.username.data:
            self.username.errors.append("Choose the local user the devices are enrolled for.")
            ok = False
        if auto and self.chosen("user_type") == "ldap" and not self.has_directory:
            self.username.errors.append(_NO_DIRECTORY)
            ok = False
        elif auto and self.chosen("user_type") == "ldap" \
                and picked_user(self.ldap_user.data) is None:
            self.username.errors.append("Search the directory and choose the user the devices "
                                        "are enrolled for.")
            ok = False
        if auto and self.usage_count.data is None and not self.usage_count.errors:
            self.usage_count.errors.append("Enter a Usage Count of 1 or more.")
            ok = False
        if self.send_alternative.data and not self.alternative_email.data:
            self.alternative_email.errors.append("Enter the alternative address.")
            ok = False
        if (auto and self.define_otp.data and not self.otp_unlimited.data
                and self.otp_validity_hours.data is None and not self.otp_validity_hours.errors):
            self.otp_validity_hours.errors.append("Enter the hours, or tick Unlimited.")
            ok = False
        return ok

    def add_errors(self, errors: dict[str, str]) -> None:
        """Put domain errors next to their fields; the rest go to the form as a whole."""
        self.form_errors = []
        for name, message in errors.items():
            field = {"user": self.username, "otp_validity": self.otp_validity_hours}.get(
                name, getattr(self, name, None))
            if field is not None and hasattr(field, "errors"):
                field.errors = list(field.errors) + [message]
            else:
                self.form_errors.append(message)


class SearchForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField("Search", filters=[_strip], validators=[Optional(), Length(max=128)])
