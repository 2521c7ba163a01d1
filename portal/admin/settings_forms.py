"""Forms of the settings pages: Self Service Portal (OTP), Companion, Localizations, Zero-Touch."""
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, HiddenField, IntegerField, SelectField, StringField, URLField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, StopValidation

from portal.android.payload import CompanionConfig
from portal.settings.companion import validate_companion_settings
from portal.settings.otp_policy import MAX_LENGTH, MAX_VALIDITY_HOURS, MIN_LENGTH
from portal.web.forms import FilterForm, show_errors, strip


class OtpPolicyForm(FlaskForm):
    length = IntegerField(
        "OTP length", validators=[
            InputRequired("Enter the OTP length."),
            NumberRange(MIN_LENGTH, MAX_LENGTH,
                        f"OTP length must be from {MIN_LENGTH} to {MAX_LENGTH} characters.")],
        render_kw={"min": MIN_LENGTH, "max": MAX_LENGTH, "inputmode": "numeric"})
    alphabet = SelectField("Characters", choices=[
        ("digits", "Digits only (0–9)"),
        ("alnum", "Letters and digits (no look-alikes such as 0/O, 1/l/I)"),
        ("upper", "Upper-case letters and digits (no look-alikes)"),
    ], validate_choice=True)
    validity_hours = IntegerField("Validity (hours)", render_kw={
        "min": 1, "max": MAX_VALIDITY_HOURS, "inputmode": "numeric"})
    unlimited = BooleanField("Unlimited (the OTP never expires)")

    def validate_validity_hours(self, field):
        if self.unlimited.data:
            field.errors[:] = []  # the hours are ignored, so is whatever was typed there
            raise StopValidation()
        if not field.raw_data or not field.raw_data[0].strip():
            field.errors[:] = []
            raise StopValidation("Enter the validity in hours, or tick Unlimited.")
        if field.data is None:
            raise StopValidation()  # "Not a valid integer value." is there already
        if not 1 <= field.data <= MAX_VALIDITY_HOURS:
            raise StopValidation(f"Validity must be from 1 to {MAX_VALIDITY_HOURS} hours "
                                 "(ten years), or tick Unlimited.")


class CompanionForm(FlaskForm):
    component_name = StringField(
        "Admin component name", filters=[strip],
        validators=[DataRequired("Enter the admin component name.")],
        render_kw={"spellcheck": "false", "autocomplete": "off"})
    download_url = URLField(
        "APK download URL", filters=[strip],
        validators=[DataRequired("Enter the https:// address of the Companion APK.")],
        render_kw={"spellcheck": "false", "autocomplete": "off"})
    # A pasted checksum often ends with a line break; whitespace inside it stays an error.
    signature_checksum = StringField(
        "Signature checksum", filters=[strip],
        validators=[DataRequired("Enter the signature checksum.")],
        render_kw={"spellcheck": "false", "autocomplete": "off"})
    leave_system_apps_enabled = BooleanField("Leave system apps enabled")
    enrollment_link_scheme = StringField(
        "Enrollment link scheme", filters=[strip],
        validators=[DataRequired("Enter the enrollment link scheme, e.g. companion.")],
        render_kw={"spellcheck": "false", "autocomplete": "off"})
    # Read with the "Read APK" button (or on Save); the file is then kept and named below.
    apk = FileField("Companion APK", render_kw={
        "accept": ".apk,application/vnd.android.package-archive"})
    # The APK read earlier (the SHA-256 of the file), so Save checks the values against it.
    apk_sha256 = HiddenField(filters=[strip])

    def validate(self, extra_validators=None) -> bool:
        """Also apply Android's rules and the APK's values, so every problem shows at once,
        next to its field."""
        valid = super().validate(extra_validators)
        errors = validate_companion_settings(self.config(), self.scheme(),
                                             self.apk_sha256.data or None)
        show_errors(self, errors, first_only=True)
        return valid and not errors

    def config(self) -> CompanionConfig:
        return CompanionConfig(self.component_name.data or "", self.download_url.data or "",
                               self.signature_checksum.data or "",
                               bool(self.leave_system_apps_enabled.data))

    def scheme(self) -> str:
        return self.enrollment_link_scheme.data or ""


class LocalizationForm(FlaskForm):
    tag = StringField("Language tag", filters=[strip],
                      validators=[DataRequired("Enter a language tag, e.g. fr-CH.")],
                      render_kw={"spellcheck": "false", "autocomplete": "off",
                                 "placeholder": "fr-CH"})
    name = StringField("Name", filters=[strip],
                       validators=[DataRequired("Enter the name admins see, e.g. French "
                                                "(Switzerland)."),
                                   Length(max=64, message="Name must be at most 64 characters.")],
                       render_kw={"placeholder": "French (Switzerland)"})


class ZeroTouchUploadForm(FlaskForm):
    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file to upload.")],
                     render_kw={"accept": ".csv,.txt,text/csv,text/plain"})


class ZeroTouchSearchForm(FilterForm):
    q = StringField("Search serial number or IMEI", filters=[strip],
                    render_kw={"type": "search", "autocomplete": "off"})
