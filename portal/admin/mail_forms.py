"""Forms of Admin → Mail (the SMTP server and a test mail) and of the Outbox list."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import Length, NumberRange, Optional

from portal.mail.server import MailValues
from portal.web.forms import FilterForm, strip


_TEXT = {"spellcheck": "false", "autocomplete": "off"}


class MailSettingsForm(FlaskForm):
    host = StringField("SMTP server", filters=[strip], validators=[Length(max=255)],
                       render_kw=dict(_TEXT, placeholder="smtp.example.com"))
    port = IntegerField("Port", default=587, validators=[
        Optional(), NumberRange(1, 65535, "The port must be from 1 to 65535.")],
        render_kw={"min": 1, "max": 65535, "inputmode": "numeric"})
    security = SelectField("Connection security", default="starttls", choices=[
        ("starttls", "STARTTLS (upgraded to TLS, usually port 587)"),
        ("tls", "TLS from the start (implicit TLS, usually port 465)"),
        ("none", "None (unencrypted: the password and the QR codes cross the network in "
                 "clear text)")])
    username = StringField("User name (optional)", filters=[strip],
                           validators=[Length(max=255)], render_kw=_TEXT)
    password = PasswordField("Password", validators=[Length(max=1024)],
                             render_kw={"autocomplete": "new-password"})
    clear_password = BooleanField("Remove the stored password")
    sender = StringField("Sender (From)", filters=[strip], validators=[Length(max=254)],
                         render_kw=dict(_TEXT, placeholder="QR-Code Provisioning "
                                                           "<portal@example.com>"))
    timeout = IntegerField("Timeout (seconds)", default=10, validators=[
        Optional(), NumberRange(1, 120, "The timeout must be from 1 to 120 seconds.")],
        render_kw={"min": 1, "max": 120, "inputmode": "numeric"})
    test_recipient = StringField("Send a test mail to", filters=[strip],
                                 validators=[Length(max=254)],
                                 render_kw=dict(_TEXT, type="email",
                                                placeholder="you@example.com"))

    def values(self) -> MailValues:
        """The submitted values; an empty password keeps the stored one unless cleared."""
        password = "" if self.clear_password.data else (self.password.data or None)
        return MailValues(host=self.host.data or "", port=self.port.data or 0,
                          security=self.security.data, username=self.username.data or "",
                          password=password, sender=self.sender.data or "",
                          timeout=self.timeout.data or 0)


class OutboxFilterForm(FilterForm):
    status = SelectField("Status", default="", choices=[
        ("", "All"), ("queued", "Queued"), ("sending", "Sending"), ("sent", "Sent"),
        ("failed", "Failed")])
