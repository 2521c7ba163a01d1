"""Forms of the Management Console."""
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (BooleanField, HiddenField, IntegerField, PasswordField, RadioField,
                     SelectField, StringField)
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.widgets import PasswordInput

from portal.accounts.directory import picked_user
from portal.android.certificates import (MAX_UPLOAD_BYTES, CertificateError,
                                         ca_certificate_value, user_certificate_value)
from portal.provisioning import wizard
from portal.provisioning.pending_actions import Extension
from portal.provisioning.qr_codes import QrCodeRequest
from portal.provisioning.wizard import SAVED_PROFILE, WizardState
from portal.settings.network_profiles import ProfileValues
from portal.vocabulary import (MANAGEMENT_LABELS, EapMethod, EnrollmentOption, Management,
                               NetworkType, Phase2, ProxyKind, SecurityType, UserType)
from portal.web.forms import FilterForm, show_errors, strip


_NO_DIRECTORY = ("No directory is configured: set up Active Directory under Admin → Sign-in "
                 "methods before choosing LDAP users, or choose User Type Local.")
_DIRECTORY_INPUTS = ("ldap_bind", "ldap_password", "ldap_query")
_NETWORKS = [(NetworkType.WIFI, "Wi-Fi"), (NetworkType.MOBILE, "Mobile data")]
NO_PROFILES = ("No network profile is saved yet: create one under Admin → Network profiles, or "
               "choose Wi-Fi or Mobile data.")


class LoginForm(FlaskForm):
    username = StringField("User name", validators=[DataRequired(), Length(max=64)],
                           render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})
    next = HiddenField()


class EmptyForm(FlaskForm):
    """A CSRF token and nothing else, for buttons that only POST."""


class QrCodeForm(FlaskForm):
    """Advanced QR-Code Provisioning: the visible names are the ones PRODUCT.md §2 uses; the
    field names are QrCodeRequest's, so the domain's messages land beside their fields."""

    name = StringField("Name", filters=[strip], validators=[Optional(), Length(
        max=100, message="The name can be at most 100 characters.")],
        render_kw={"autocomplete": "off", "maxlength": 100,
                   "placeholder": "e.g. Library tablets, 2nd floor"})
    option = RadioField("Enrollment option", default=EnrollmentOption.SSP, choices=[
        (EnrollmentOption.SSP, "Self Service Portal"),
        (EnrollmentOption.AUTO, "Automatic Provisioning")])
    # Companion (ours) or Google's Android Device Policy (issue 17); the view disables the
    # second while the Android Management API is not set up (MANAGEMENT_CHOICES).
    management = RadioField("Management", default=Management.COMPANION,
                            choices=list(MANAGEMENT_LABELS.items()))
    user_type = RadioField("User Type", default=UserType.LOCAL, choices=[
        (UserType.LDAP, "LDAP"), (UserType.LOCAL, "Local")])
    username = StringField("User", filters=[strip], validators=[Optional(), Length(max=256)],
                           render_kw={"autocomplete": "off"})
    ldap_bind = StringField("Bind DN or user name", filters=[strip],
                            validators=[Optional(), Length(max=512)],
                            render_kw={"autocomplete": "off"})
    ldap_password = PasswordField("LDAP password", validators=[Optional(), Length(max=1024)],
                                  render_kw={"autocomplete": "off"})
    ldap_query = StringField("Directory user", filters=[strip],
                             validators=[Optional(), Length(max=256)],
                             render_kw={"autocomplete": "off"})
    # The directory user chosen from a search, as a signed token (see accounts.directory).
    ldap_user = HiddenField("Directory user found")
    lang = SelectField("Localization", choices=[])
    time_zone = StringField("Time zone", filters=[strip], validators=[Optional(), Length(max=64)],
                            render_kw={"autocomplete": "off", "spellcheck": "false",
                                       "list": "time-zones", "placeholder": "e.g. Europe/Zurich"})
    usage_count = IntegerField("Usage Count", default=1, validators=[
        Optional(), NumberRange(min=1, message="Usage Count must be 1 or more.")])
    network = RadioField("Network Type", default=NetworkType.WIFI,
                         choices=_NETWORKS + [(SAVED_PROFILE, "Saved profile")])
    # The saved profiles, set by the view; the domain says when the id is not one of them.
    network_profile = SelectField("Network profile", choices=[], validate_choice=False)
    wifi_ssid = StringField("SSID", validators=[Optional(), Length(max=128)],
                            render_kw={"autocomplete": "off", "spellcheck": "false"})
    wifi_security = SelectField("Security Type", default=SecurityType.WPA, choices=[
        (SecurityType.WPA, "WPA"), (SecurityType.WEP, "WEP"),
        (SecurityType.EAP, "EAP (WPA/WPA2-Enterprise)"), (SecurityType.NONE, "None")])
    # Never sent back to the browser: a re-rendered page asks for it again.
    wifi_password = PasswordField("Password", validators=[Optional(), Length(max=128)],
                                  render_kw={"autocomplete": "off"})
    wifi_hidden = BooleanField("Hidden network")
    # Enterprise Wi-Fi (EAP, Android 10+). The password above is the identity's.
    wifi_eap_method = SelectField("EAP method", default=EapMethod.PEAP,
                                  choices=[(method, method) for method in EapMethod])
    wifi_phase2 = SelectField("Phase 2 authentication", default=Phase2.MSCHAPV2, choices=[
        (Phase2.MSCHAPV2, "MSCHAPV2"), (Phase2.GTC, "GTC"), (Phase2.PAP, "PAP (TTLS)"),
        (Phase2.MSCHAP, "MSCHAP (TTLS)"), (Phase2.NONE, "None (PEAP)")])
    wifi_identity = StringField("Identity", filters=[strip],
                                validators=[Optional(), Length(max=256)],
                                render_kw={"autocomplete": "off", "spellcheck": "false"})
    wifi_anonymous_identity = StringField("Anonymous identity", filters=[strip],
                                          validators=[Optional(), Length(max=256)],
                                          render_kw={"autocomplete": "off",
                                                     "spellcheck": "false"})
    wifi_domain = StringField("Domain", filters=[strip], validators=[Optional(), Length(max=256)],
                              render_kw={"autocomplete": "off", "spellcheck": "false",
                                         "placeholder": "e.g. radius.example.com"})
    wifi_ca_certificate = FileField("CA certificate", render_kw={
        "accept": ".pem,.crt,.cer,.der,application/x-x509-ca-cert"})
    wifi_user_certificate = FileField("Client certificate", render_kw={
        "accept": ".p12,.pfx,.pem,application/x-pkcs12"})
    # Opens the uploaded PKCS#12 or encrypted PEM key once; never stored, never sent back.
    wifi_user_certificate_password = PasswordField(
        "Client certificate password", validators=[Optional(), Length(max=1024)],
        render_kw={"autocomplete": "off"})
    proxy = RadioField("Proxy", default=ProxyKind.NONE, choices=[
        (ProxyKind.NONE, "No proxy"), (ProxyKind.MANUAL, "Manual proxy"),
        (ProxyKind.PAC, "Proxy auto-config (PAC)")])
    proxy_host = StringField("Proxy host", filters=[strip],
                             validators=[Optional(), Length(max=253)],
                             render_kw={"autocomplete": "off", "spellcheck": "false",
                                        "placeholder": "e.g. proxy.example.com"})
    proxy_port = IntegerField("Proxy port", validators=[Optional()],
                              render_kw={"inputmode": "numeric", "placeholder": "e.g. 3128"})
    proxy_bypass = StringField("Bypass list", filters=[strip],
                               validators=[Optional(), Length(max=1024)],
                               render_kw={"autocomplete": "off", "spellcheck": "false",
                                          "placeholder": "e.g. localhost,*.example.com"})
    pac_url = StringField("PAC URL", filters=[strip], validators=[Optional(), Length(max=1024)],
                          render_kw={"type": "url", "autocomplete": "off",
                                     "placeholder": "https://wpad.example.com/proxy.pac"})
    send_to_user = BooleanField("Send QR-Code to User")
    send_alternative = BooleanField("Send Notification to Alternative Address")
    alternative_email = StringField("Alternative address", filters=[strip],
                                    validators=[Optional(), Length(max=254)],
                                    render_kw={"type": "email", "autocomplete": "off"})
    define_otp = BooleanField("Define OTP")
    otp_validity = IntegerField("OTP validity (hours)", validators=[
        Optional(), NumberRange(min=1, max=87600,
                                message="The OTP validity must be 1 to 87,600 hours.")])
    otp_unlimited = BooleanField("Unlimited")
    # No input: where the domain's message about the Companion settings is shown.
    companion = HiddenField("Companion")

    has_directory = False  # set by the view: is an LDAP directory configured?
    has_profiles = False   # set by the view: is any network profile saved?

    @property
    def state(self) -> WizardState:
        return WizardState.from_values(self.data)

    certificates: dict[str, str] = {}  # the uploads as payload values, set by validate()

    def to_request(self) -> QrCodeRequest:
        """The domain's request from the fields that apply to the choices made."""
        values = dict(self.data, wifi_ca_certificate=None, wifi_user_certificate=None)
        return wizard.to_request(values | self.certificates)

    def error_fields(self) -> list:
        """The fields whose error region the wizard shows (csrf and LDAP inputs without a
        directory have none)."""
        return [field for field in self if field.name != "csrf_token" and (
            self.has_directory or field.name not in _DIRECTORY_INPUTS)]

    def validate(self, extra_validators=None) -> bool:
        super().validate(extra_validators)
        state = self.state
        for field in self:
            if not state.applies(field.name):  # hidden: whatever it holds is not read
                field.errors = []
        show_errors(self, self._missing(state))
        self.certificates = self._read_certificates(state)
        return not (self.form_errors or any(field.errors for field in self))

    def _read_certificates(self, state: WizardState) -> dict[str, str]:
        """Turn the uploaded certificate files into the payload's values (a message beside
        the upload when one cannot be used). Files are read here and kept nowhere else."""
        values = {}
        readers = {"wifi_ca_certificate": ca_certificate_value,
                   "wifi_user_certificate": lambda data: user_certificate_value(
                       data, self.wifi_user_certificate_password.data or None)}
        for name, read in readers.items():
            upload = self[name].data
            if not state.applies(name) or not getattr(upload, "filename", None):
                continue
            try:
                values[name] = read(upload.stream.read(MAX_UPLOAD_BYTES + 1))
            except CertificateError as error:
                self[name].errors = list(self[name].errors) + [str(error)]
        return values

    def _missing(self, state: WizardState) -> dict[str, str]:
        """The conditional "required" checks: what the choices made ask for and is empty."""
        checks = {
            "username": state.applies("username") and not self.username.data
            and "Choose the local user the devices are enrolled for.",
            "ldap_user": state.applies("ldap_user") and self._ldap_user_error(),
            "network_profile": state.profile and not self.network_profile.data
            and ("Choose one of the saved network profiles." if self.has_profiles
                 else NO_PROFILES),
            "usage_count": state.auto and self.usage_count.data is None
            and "Enter a Usage Count of 1 or more.",
            "alternative_email": state.alternative and not self.alternative_email.data
            and "Enter the alternative address.",
            "otp_validity": state.applies("otp_validity") and self.otp_validity.data is None
            and "Enter the hours, or tick Unlimited.",
            "proxy_host": state.applies("proxy_host") and not self.proxy_host.data
            and "Enter the proxy host, or choose No proxy.",
            "pac_url": state.applies("pac_url") and not self.pac_url.data
            and "Enter the PAC URL, or choose No proxy.",
        }
        return {name: message for name, message in checks.items()
                if message and not self[name].errors}

    def _ldap_user_error(self) -> str | None:
        if not self.has_directory:
            return _NO_DIRECTORY
        if picked_user(self.ldap_user.data) is None:
            return "Search the directory and choose the user the devices are enrolled for."
        return None


class NetworkProfileForm(FlaskForm):
    """Admin → Network profiles: the wizard's own Wi-Fi fields (names, labels, and the rule of
    portal.android.wifi behind them), saved once under a name and chosen in the wizard."""

    name = StringField("Name", filters=[strip], render_kw={
        "autocomplete": "off", "placeholder": "e.g. School Wi-Fi"})
    # The domain's messages say what is wrong with a choice: no "Not a valid choice" first.
    network = RadioField("Network Type", default=NetworkType.WIFI, choices=_NETWORKS,
                         validate_choice=False)
    wifi_ssid = QrCodeForm.wifi_ssid
    wifi_security = SelectField("Security Type", default=SecurityType.WPA, choices=[
        (SecurityType.WPA, "WPA"), (SecurityType.WEP, "WEP"), (SecurityType.NONE, "None")],
        validate_choice=False)
    wifi_password = QrCodeForm.wifi_password  # never sent back; empty keeps the stored one
    wifi_hidden = QrCodeForm.wifi_hidden
    management = RadioField("Management", default=Management.COMPANION, choices=[
        (value, label) for value, label in MANAGEMENT_LABELS.items()], validate_choice=False)

    def to_values(self) -> ProfileValues:
        """A hidden field (the password of an open network) is sent by the browser all the
        same: as in the wizard, only the fields the choices show are read."""
        state = WizardState.from_values(self.data)
        return ProfileValues(name=self.name.data or "", network=self.network.data or "",
                             wifi_ssid=self.wifi_ssid.data or None,
                             wifi_security=self.wifi_security.data or None,
                             wifi_password=state.applies("wifi_password")
                             and self.wifi_password.data or None,
                             wifi_hidden=bool(self.wifi_hidden.data),
                             management=self.management.data or "")


class ExtendForm(FlaskForm):
    """Extend (View OTP): a new expiry for a QR code's OTP, counted from now, or Unlimited."""
    amount = IntegerField("Extend by", validators=[Optional(), NumberRange(
        min=1, message="Enter a whole number, 1 or more.")], render_kw={"inputmode": "numeric"})
    unit = SelectField("Unit", default="days", choices=[("hours", "hours"), ("days", "days")])
    unlimited = BooleanField("Unlimited (the OTP never expires)")

    def to_extension(self) -> Extension:
        return Extension(amount=self.amount.data, unit=self.unit.data,
                         unlimited=bool(self.unlimited.data))


class RegenerateForm(FlaskForm):
    """Regenerate a stale QR code: mail the new one only when asked (most were printed)."""
    mail = BooleanField("Mail the new QR code again (to the same recipients)", default=False)


class SearchForm(FilterForm):
    q = StringField("Search", filters=[strip], validators=[Optional(), Length(max=128)])


class LocalUserSearchForm(FilterForm):
    """The wizard's User field, which sends itself to search the local users as it is typed."""
    username = StringField("User", filters=[strip])
