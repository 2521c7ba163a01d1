"""The form of Admin → Sign-in methods: Local, Active Directory (LDAP), Azure AD."""
from flask_wtf import FlaskForm
from wtforms import (BooleanField, IntegerField, PasswordField, SelectField, StringField,
                     TextAreaField)
from wtforms.validators import Length, NumberRange, Optional

from portal.settings.sign_in import SignInValues
from portal.web.forms import strip


_TEXT = {"spellcheck": "false", "autocomplete": "off"}


class SignInSettingsForm(FlaskForm):
    local_enabled = BooleanField("Local accounts (users added in this console or with "
                                 "flask users add)")

    ldap_enabled = BooleanField("Active Directory / LDAP")
    ldap_url = StringField("Server", filters=[strip], validators=[Length(max=2048)],
                           render_kw=dict(_TEXT, placeholder="ldaps://dc01.example.com:636"))
    ldap_security = SelectField("Connection security", choices=[
        ("ldaps", "LDAPS (TLS from the start, usually port 636)"),
        ("starttls", "StartTLS (ldap:// upgraded to TLS, usually port 389)"),
        ("none", "None (unencrypted: passwords cross the network in clear text)")])
    ldap_ca_cert = TextAreaField("CA certificate (PEM, optional)", filters=[strip],
                                 validators=[Length(max=65536)],
                                 render_kw=dict(_TEXT, rows=4,
                                                placeholder="-----BEGIN CERTIFICATE-----"))
    ldap_bind_dn = StringField("Service account", filters=[strip],
                               validators=[Length(max=1024)],
                               render_kw=dict(_TEXT, placeholder="cn=portal-svc,ou=service,"
                                                                 "dc=example,dc=org"))
    ldap_bind_password = PasswordField("Service account password",
                                       validators=[Length(max=1024)],
                                       render_kw={"autocomplete": "new-password"})
    ldap_clear_password = BooleanField("Remove the stored password")
    ldap_base_dn = StringField("Base DN", filters=[strip], validators=[Length(max=1024)],
                               render_kw=dict(_TEXT, placeholder="ou=users,dc=example,dc=org"))
    ldap_user_attribute = SelectField("Sign in with", choices=[
        ("sAMAccountName", "sAMAccountName (pre-Windows 2000 name, e.g. alice)"),
        ("userPrincipalName", "userPrincipalName (e.g. alice@example.org)"),
        ("uid", "uid (OpenLDAP)"), ("mail", "mail (email address)")])
    ldap_user_filter = StringField("Only users matching (LDAP filter, optional)",
                                   filters=[strip], validators=[Length(max=1024)],
                                   render_kw=dict(_TEXT, placeholder="(memberOf=cn=students,"
                                                                     "ou=groups,dc=example,"
                                                                     "dc=org)"))
    ldap_timeout = IntegerField("Timeout (seconds)", default=5, validators=[
        Optional(), NumberRange(1, 60, "The timeout must be from 1 to 60 seconds.")],
        render_kw={"min": 1, "max": 60, "inputmode": "numeric"})

    azure_enabled = BooleanField("Azure AD (Entra ID)")
    azure_tenant = StringField("Tenant", filters=[strip], validators=[Length(max=255)],
                               render_kw=dict(_TEXT, placeholder="contoso.onmicrosoft.com or "
                                                                 "the tenant ID"))
    azure_authority = StringField("Other OpenID provider (issuer URL, instead of a tenant)",
                                  filters=[strip], validators=[Length(max=2048)],
                                  render_kw=dict(_TEXT, placeholder="https://id.example.com/"
                                                                    "realms/staff"))
    azure_client_id = StringField("Application (client) ID", filters=[strip],
                                  validators=[Length(max=255)], render_kw=_TEXT)
    azure_client_secret = PasswordField("Client secret", validators=[Length(max=1024)],
                                        render_kw={"autocomplete": "new-password"})
    azure_clear_secret = BooleanField("Remove the stored secret")

    def values(self) -> SignInValues:
        """The submitted values; an empty password keeps the stored one unless cleared."""
        def secret(field, clear):
            if clear.data:
                return ""
            return field.data or None
        return SignInValues(
            local_enabled=self.local_enabled.data, ldap_enabled=self.ldap_enabled.data,
            ldap_url=self.ldap_url.data or "", ldap_security=self.ldap_security.data,
            ldap_ca_cert=self.ldap_ca_cert.data or "", ldap_bind_dn=self.ldap_bind_dn.data or "",
            ldap_bind_password=secret(self.ldap_bind_password, self.ldap_clear_password),
            ldap_base_dn=self.ldap_base_dn.data or "",
            ldap_user_attribute=self.ldap_user_attribute.data,
            ldap_user_filter=self.ldap_user_filter.data or "",
            ldap_timeout=self.ldap_timeout.data or 5,
            azure_enabled=self.azure_enabled.data, azure_tenant=self.azure_tenant.data or "",
            azure_authority=self.azure_authority.data or "",
            azure_client_id=self.azure_client_id.data or "",
            azure_client_secret=secret(self.azure_client_secret, self.azure_clear_secret))
