"""The Self Service Portal's sign-in methods: Local, Active Directory (LDAP), Azure AD.

The database row wins once an admin saves the page; until then the environment seeds it
(LDAP_* and AZURE_* in config.py). Secrets are stored encrypted and never shown again.
"""
import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography import x509
from flask import current_app
from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

from portal import vault
from portal.audit.log import record
from portal.database import db, end_transaction, save_singleton
from portal.directory import azure, ldap
from portal.directory.azure import AzureConfig
from portal.directory.ldap import LdapConfig
from portal.settings.models import LDAP_SECURITY, LDAP_USER_ATTRIBUTES, SignInSettings
from portal.settings.errors import SettingsError
from portal.vocabulary import UserSource

log = logging.getLogger(__name__)

METHODS = tuple(UserSource)  # the sign-in methods are the sources of end users
METHOD_NAMES = {UserSource.LOCAL: "Local", UserSource.LDAP: "Active Directory",
                UserSource.AZURE: "Azure AD"}


class SignInSettingsError(SettingsError):
    """The sign-in methods cannot be saved."""


@dataclass
class SignInValues:
    """What the settings page submits. A password or secret of None keeps the stored one."""

    local_enabled: bool = True
    ldap_enabled: bool = False
    ldap_url: str = ""
    ldap_security: str = "none"
    ldap_ca_cert: str = ""
    ldap_bind_dn: str = ""
    ldap_bind_password: str | None = None
    ldap_base_dn: str = ""
    ldap_user_attribute: str = "sAMAccountName"
    ldap_user_filter: str = ""
    ldap_timeout: int = 5
    azure_enabled: bool = False
    azure_tenant: str = ""
    azure_authority: str = ""
    azure_client_id: str = ""
    azure_client_secret: str | None = None


@dataclass
class SignInMethods:
    local_enabled: bool
    ldap_enabled: bool
    azure_enabled: bool
    ldap: LdapConfig | None = None    # complete enough to try, whether enabled or not
    azure: AzureConfig | None = None
    source: str = "default"           # "saved", "environment" or "default"
    has_ldap_password: bool = False
    has_azure_secret: bool = False
    values: SignInValues = field(default_factory=SignInValues)

    @property
    def enabled(self) -> list[str]:
        """The methods an end user is offered, in the order of the sign-in page."""
        return [method for method, on in ((UserSource.LOCAL, self.local_enabled),
                                           (UserSource.LDAP, self.ldap_enabled and self.ldap),
                                           (UserSource.AZURE, self.azure_enabled and self.azure))
                if on]


def _environment_values() -> tuple[SignInValues, str | None, str | None]:
    cfg = current_app.config
    url = cfg.get("LDAP_URL") or ""
    ca = ""
    if cfg.get("LDAP_CA_FILE"):
        with open(cfg["LDAP_CA_FILE"], encoding="utf-8") as handle:
            ca = handle.read()
    security = cfg.get("LDAP_SECURITY") or ("ldaps" if url.startswith("ldaps://") else "none")
    values = SignInValues(
        local_enabled=True, ldap_enabled=bool(url), ldap_url=url, ldap_security=security,
        ldap_ca_cert=ca, ldap_bind_dn=cfg.get("LDAP_BIND_DN") or "",
        ldap_base_dn=cfg.get("LDAP_BASE_DN") or "",
        ldap_user_attribute=cfg.get("LDAP_USER_ATTRIBUTE") or "sAMAccountName",
        ldap_user_filter=cfg.get("LDAP_USER_FILTER") or "",
        ldap_timeout=int(cfg.get("LDAP_TIMEOUT") or 5),
        azure_enabled=bool(cfg.get("AZURE_CLIENT_ID") and cfg.get("AZURE_CLIENT_SECRET")),
        azure_tenant=cfg.get("AZURE_TENANT") or "",
        azure_authority=cfg.get("AZURE_AUTHORITY") or "",
        azure_client_id=cfg.get("AZURE_CLIENT_ID") or "")
    return values, cfg.get("LDAP_BIND_PASSWORD"), cfg.get("AZURE_CLIENT_SECRET")


def _row_values(row: SignInSettings) -> tuple[SignInValues, str | None, str | None]:
    values = SignInValues(
        local_enabled=row.local_enabled, ldap_enabled=row.ldap_enabled,
        ldap_url=row.ldap_url or "", ldap_security=row.ldap_security,
        ldap_ca_cert=row.ldap_ca_cert or "", ldap_bind_dn=row.ldap_bind_dn or "",
        ldap_base_dn=row.ldap_base_dn or "", ldap_user_attribute=row.ldap_user_attribute,
        ldap_user_filter=row.ldap_user_filter or "", ldap_timeout=row.ldap_timeout,
        azure_enabled=row.azure_enabled, azure_tenant=row.azure_tenant or "",
        azure_authority=row.azure_authority or "", azure_client_id=row.azure_client_id or "")
    return values, _decrypt(row.ldap_bind_password_enc, "the LDAP service password"), \
        _decrypt(row.azure_client_secret_enc, "the Azure AD client secret")


def _decrypt(ciphertext: str | None, what: str) -> str | None:
    """The stored secret, or None when there is none or SECRET_KEY changed since it was saved
    (the method then fails its connection test and asks for the secret again, not a 500)."""
    if not ciphertext:
        return None
    try:
        return vault.decrypt(ciphertext)
    except ValueError:
        log.warning("%s cannot be decrypted with this SECRET_KEY: enter it again under "
                    "Admin → Sign-in methods", what)
        return None


def ldap_config(values: SignInValues, password: str | None) -> LdapConfig | None:
    if not (values.ldap_url and values.ldap_base_dn):
        return None
    return LdapConfig(url=values.ldap_url, security=values.ldap_security,
                      ca_cert_pem=values.ldap_ca_cert or None,
                      bind_dn=values.ldap_bind_dn or None, bind_password=password,
                      base_dn=values.ldap_base_dn, user_attribute=values.ldap_user_attribute,
                      user_filter=values.ldap_user_filter or None,
                      connect_timeout=float(values.ldap_timeout),
                      read_timeout=float(values.ldap_timeout) * 2)


def azure_config(values: SignInValues, secret: str | None) -> AzureConfig | None:
    if not (values.azure_client_id and secret and (values.azure_tenant or values.azure_authority)):
        return None
    return AzureConfig(client_id=values.azure_client_id, client_secret=secret,
                       tenant=values.azure_tenant or None,
                       authority=values.azure_authority or None,
                       ca_bundle=current_app.config.get("AZURE_CA_FILE") or None)


def current() -> SignInMethods:
    row = db.session.get(SignInSettings, 1)
    values, password, secret = _row_values(row) if row else _environment_values()
    source = "saved" if row else ("environment" if values.ldap_url or values.azure_client_id
                                  else "default")
    return SignInMethods(
        local_enabled=values.local_enabled, ldap_enabled=values.ldap_enabled,
        azure_enabled=values.azure_enabled, ldap=ldap_config(values, password),
        azure=azure_config(values, secret), source=source, has_ldap_password=bool(password),
        has_azure_secret=bool(secret), values=values)


def effective_secrets(values: SignInValues) -> tuple[str | None, str | None]:
    """The LDAP password and Azure secret the submitted values mean: typed, or else stored."""
    row = db.session.get(SignInSettings, 1)
    _, password, secret = _row_values(row) if row else _environment_values()
    return (password if values.ldap_bind_password is None else values.ldap_bind_password or None,
            secret if values.azure_client_secret is None else values.azure_client_secret or None)


def validate(values: SignInValues, password: str | None, secret: str | None) -> dict[str, str]:
    """Every problem of the submitted values, by form field; empty when they can be saved."""
    errors = {}
    if values.ldap_url or values.ldap_enabled:
        errors.update(_ldap_errors(values, password))
    if values.azure_client_id or values.azure_tenant or values.azure_authority \
            or values.azure_enabled:
        errors.update(_azure_errors(values, secret))
    return errors


def _ldap_errors(values: SignInValues, password: str | None) -> dict[str, str]:
    errors = {}
    url = urlsplit(values.ldap_url)
    if url.scheme not in ("ldap", "ldaps") or not url.hostname:
        errors["ldap_url"] = "Enter the server as ldap://host:port or ldaps://host:port."
    else:
        try:
            url.port
        except ValueError:
            errors["ldap_url"] = "The port must be a number from 1 to 65535."
    if values.ldap_security not in LDAP_SECURITY:
        errors["ldap_security"] = "Choose None, StartTLS or LDAPS."
    elif "ldap_url" not in errors and (values.ldap_security == "ldaps") != (url.scheme == "ldaps"):
        errors["ldap_security"] = ("LDAPS needs an ldaps:// address; StartTLS and None need "
                                   "an ldap:// address.")
    if values.ldap_ca_cert.strip():
        try:
            x509.load_pem_x509_certificates(values.ldap_ca_cert.strip().encode())
        except ValueError:
            errors["ldap_ca_cert"] = ("This is not a PEM certificate (-----BEGIN CERTIFICATE-----"
                                      " …).")
    for name in ("ldap_base_dn", "ldap_bind_dn"):
        value = getattr(values, name)
        if value and "=" in value:
            try:
                parse_dn(value)
            except LDAPInvalidDnError:
                errors[name] = "This is not a valid distinguished name (e.g. dc=example,dc=org)."
    if not values.ldap_base_dn:
        errors["ldap_base_dn"] = "Enter the base DN under which users are searched."
    if values.ldap_bind_dn and not password:
        errors["ldap_bind_password"] = "Enter the service account's password."
    if values.ldap_user_attribute not in LDAP_USER_ATTRIBUTES:
        errors["ldap_user_attribute"] = "Choose sAMAccountName, userPrincipalName, uid or mail."
    flt = values.ldap_user_filter.strip()
    if flt and not (flt.startswith("(") and flt.endswith(")") and _balanced(flt)):
        errors["ldap_user_filter"] = ("A filter is written in parentheses, e.g. "
                                      "(memberOf=cn=students,ou=groups,dc=example,dc=org).")
    if not 1 <= values.ldap_timeout <= 60:
        errors["ldap_timeout"] = "The timeout must be from 1 to 60 seconds."
    return errors


def _balanced(text: str) -> bool:
    depth = 0
    for index, char in enumerate(text):
        if char == "\\":
            continue
        if char == "(" and (index == 0 or text[index - 1] != "\\"):
            depth += 1
        elif char == ")" and text[index - 1] != "\\":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _azure_errors(values: SignInValues, secret: str | None) -> dict[str, str]:
    errors = {}
    if not values.azure_client_id:
        errors["azure_client_id"] = "Enter the application (client) ID."
    if not secret:
        errors["azure_client_secret"] = "Enter the client secret."
    if values.azure_tenant and values.azure_authority:
        errors["azure_authority"] = "Enter either a tenant or an OpenID authority, not both."
    elif not (values.azure_tenant or values.azure_authority):
        errors["azure_tenant"] = "Enter the tenant (ID or domain), or an OpenID authority."
    if values.azure_authority:
        url = urlsplit(values.azure_authority)
        if url.scheme != "https" or not url.hostname:
            errors["azure_authority"] = "The authority must be an https:// address."
    if values.azure_tenant and not all(c.isalnum() or c in "-._" for c in values.azure_tenant):
        errors["azure_tenant"] = "A tenant is an ID (a GUID) or a domain such as contoso.com."
    elif values.azure_tenant.lower() in ("common", "organizations", "consumers"):
        errors["azure_tenant"] = ("Enter your own tenant: “common”, “organizations” and "
                                  "“consumers” would let in accounts of any organization.")
    return errors


def try_connection(kind: str, values: SignInValues, *, actor: str) -> list[ldap.Check]:
    """The admin's "Test connection" for "ldap" or "azure" with values not (necessarily)
    saved: typed secrets, else the stored ones. Records the outcome and commits."""
    password, secret = effective_secrets(values)
    errors = {name: message for name, message in validate(values, password, secret).items()
              if name.startswith(kind)}
    end_transaction()  # only read so far: the directory answers outside a transaction
    if errors:
        checks = [ldap.Check("Settings", False, " ".join(errors.values()))]
    elif kind == UserSource.LDAP:
        checks = ldap.test_connection(ldap_config(values, password))
    else:
        checks = azure.test_connection(azure_config(values, secret))
    failed = next((check for check in checks if not check.ok), None)
    record(f"settings.test_{kind}", actor_type="admin", actor=actor,
           outcome="error" if failed else "success",
           failed=f"{failed.name}: {failed.detail}" if failed else None)
    db.session.commit()
    return checks


def save(values: SignInValues, *, actor: str) -> SignInMethods:
    """Validate and save the sign-in settings; raises SignInSettingsError, nothing written."""
    password, secret = effective_secrets(values)
    errors = validate(values, password, secret)
    if errors:
        raise SignInSettingsError(errors)
    def fill(row):
        _fill(row, values, password, secret)
        record("settings.sign_in", actor_type="admin", actor=actor,
               local=values.local_enabled, ldap=values.ldap_enabled, azure=values.azure_enabled)
    save_singleton(SignInSettings, fill)
    return current()


def _fill(row: SignInSettings, values: SignInValues, password: str | None,
          secret: str | None) -> None:
    for name in ("local_enabled", "ldap_enabled", "ldap_security", "ldap_user_attribute",
                 "ldap_timeout", "azure_enabled"):
        setattr(row, name, getattr(values, name))
    for name in ("ldap_url", "ldap_ca_cert", "ldap_bind_dn", "ldap_base_dn",
                 "ldap_user_filter", "azure_tenant", "azure_authority", "azure_client_id"):
        setattr(row, name, getattr(values, name).strip() or None)
    row.ldap_bind_password_enc = vault.encrypt(password) if password else None
    row.azure_client_secret_enc = vault.encrypt(secret) if secret else None


def admin_totp_required() -> bool:
    """Whether every admin must sign in with a second step (Admin → Sign-in methods)."""
    row = db.session.get(SignInSettings, 1)
    return bool(row and row.admin_totp_required)


def set_admin_totp_required(required: bool, *, actor: str) -> None:
    """Require two-step sign-in of every admin, or leave it to each; audited, commits."""
    def fill(row):
        if row in db.session.new:  # the first saved row keeps what the environment set
            _fill(row, *_environment_values())
        before = bool(row.admin_totp_required)
        row.admin_totp_required = required
        record("settings.admin_totp_required", actor_type="admin", actor=actor,
               before=before, after=required)
    save_singleton(SignInSettings, fill)
