"""The QR-code wizard's choices as one object: which fields apply, and the request they make."""
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from portal.provisioning.qr_codes import UNLIMITED, QrCodeRequest
from portal.vocabulary import (EapMethod, EnrollmentOption, Management, NetworkType,
                               ProxyKind, SecurityType, UserType)

# Each field applies only while all of its conditions hold. A condition is a property of
# WizardState and, by the same name, a `[data-when~=name]` rule in static/css/portal.css, so the
# browser shows exactly the fields this table lets into the request, with no request of its own.
SHOWN_WHEN: dict[str, tuple[str, ...]] = {
    "network_profile": ("profile",),
    "user_type": ("auto",),
    "username": ("auto", "local"),
    "ldap_bind": ("auto", "ldap"),
    "ldap_password": ("auto", "ldap"),
    "ldap_query": ("auto", "ldap"),
    "ldap_user": ("auto", "ldap"),
    "usage_count": ("auto",),
    "wifi_ssid": ("wifi",),
    "wifi_security": ("wifi",),
    "wifi_password": ("wifi", "secured", "no_tls"),
    "wifi_hidden": ("wifi",),
    "wifi_eap_method": ("wifi", "eap"),
    "wifi_phase2": ("wifi", "eap", "inner"),
    "wifi_identity": ("wifi", "eap"),
    "wifi_anonymous_identity": ("wifi", "eap", "inner"),
    "wifi_domain": ("wifi", "eap"),
    "wifi_ca_certificate": ("wifi", "eap"),
    "wifi_user_certificate": ("wifi", "eap", "tls"),
    "wifi_user_certificate_password": ("wifi", "eap", "tls"),
    "proxy": ("wifi",),
    "proxy_host": ("wifi", "manual_proxy"),
    "proxy_port": ("wifi", "manual_proxy"),
    "proxy_bypass": ("wifi", "manual_proxy"),
    "pac_url": ("wifi", "pac"),
    "send_to_user": ("auto",),
    "alternative_email": ("alternative",),
    "define_otp": ("auto",),
    "otp_unlimited": ("auto", "define_otp"),
    "otp_validity": ("auto", "define_otp", "limited"),
}
CONDITIONS = ("auto", "ssp", "companion", "adp", "local", "ldap", "wifi", "mobile", "profile", "secured",
              "alternative",
              "define_otp", "limited", "eap", "inner", "tls", "no_tls", "manual_proxy", "pac")
# The wizard's third Network Type: a saved network profile (Admin → Network profiles) gives the
# network, so the request carries the profile's id instead of Wi-Fi or mobile-data fields.
SAVED_PROFILE = "profile"


def _member(enum: type[StrEnum], value, default: StrEnum) -> StrEnum:
    try:
        return enum(value)
    except ValueError:
        return default  # unknown or missing: the form's own check says so


@dataclass(frozen=True)
class WizardState:
    """The choices made so far; the form's defaults when nothing was chosen."""
    option: EnrollmentOption = EnrollmentOption.SSP
    management: Management = Management.COMPANION
    user_type: UserType = UserType.LOCAL
    network: str = NetworkType.WIFI  # a NetworkType or SAVED_PROFILE
    wifi_security: SecurityType = SecurityType.WPA
    send_alternative: bool = False
    define_otp: bool = False
    otp_unlimited: bool = False
    wifi_eap_method: EapMethod = EapMethod.PEAP
    proxy: ProxyKind = ProxyKind.NONE

    @classmethod
    def from_values(cls, values: Mapping) -> "WizardState":
        return cls(option=_member(EnrollmentOption, values.get("option"), cls.option),
                   management=_member(Management, values.get("management"), cls.management),
                   user_type=_member(UserType, values.get("user_type"), cls.user_type),
                   network=SAVED_PROFILE if values.get("network") == SAVED_PROFILE
                   else _member(NetworkType, values.get("network"), cls.network),
                   wifi_security=_member(SecurityType, values.get("wifi_security"),
                                         cls.wifi_security),
                   send_alternative=bool(values.get("send_alternative")),
                   define_otp=bool(values.get("define_otp")),
                   otp_unlimited=bool(values.get("otp_unlimited")),
                   wifi_eap_method=_member(EapMethod, values.get("wifi_eap_method"),
                                           cls.wifi_eap_method),
                   proxy=_member(ProxyKind, values.get("proxy"), cls.proxy))

    auto = property(lambda self: self.option == EnrollmentOption.AUTO)
    ssp = property(lambda self: self.option == EnrollmentOption.SSP)
    companion = property(lambda self: self.management == Management.COMPANION)
    adp = property(lambda self: self.management == Management.ADP)
    local = property(lambda self: self.user_type == UserType.LOCAL)
    ldap = property(lambda self: self.user_type == UserType.LDAP)
    wifi = property(lambda self: self.network == NetworkType.WIFI)
    mobile = property(lambda self: self.network == NetworkType.MOBILE)
    profile = property(lambda self: self.network == SAVED_PROFILE)
    secured = property(lambda self: self.wifi_security != SecurityType.NONE)
    alternative = property(lambda self: self.send_alternative)
    limited = property(lambda self: not self.otp_unlimited)
    eap = property(lambda self: self.wifi_security == SecurityType.EAP)
    inner = property(lambda self: self.wifi_eap_method in (EapMethod.PEAP, EapMethod.TTLS))
    tls = property(lambda self: self.wifi_eap_method == EapMethod.TLS)
    no_tls = property(lambda self: not (self.eap and self.tls))
    manual_proxy = property(lambda self: self.proxy == ProxyKind.MANUAL)
    pac = property(lambda self: self.proxy == ProxyKind.PAC)

    @staticmethod
    def when(name: str) -> str:
        """The conditions of a field, as the template writes them into data-when."""
        return " ".join(SHOWN_WHEN.get(name, ()))

    def applies(self, name: str) -> bool:
        """Is the field shown (and so read) for these choices? Fields not listed always are."""
        return all(getattr(self, condition) for condition in SHOWN_WHEN.get(name, ()))

    @property
    def needs_password(self) -> bool:
        return self.applies("wifi_password")


# Sent by the live QR version only as a size (static/js/wizard.js): a GET's URL is logged.
SIZED_ONLY = ("wifi_password", "ldap_password", "wifi_user_certificate_password",
              "wifi_ca_certificate", "wifi_user_certificate")
MAX_SIZED = 8192
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def sizing_request(values: Mapping, sizes: Mapping) -> QrCodeRequest:
    """The request as typed so far, for sizing its QR code: each secret and certificate is a
    placeholder of the size the browser reported (`<name>_bytes`), never its value."""
    # Control characters are only bytes to count: no look-up (the user's) is ever sent a NUL.
    values = {name: _CONTROL.sub("?", value) if isinstance(value, str) else value
              for name, value in values.items()}
    for name in SIZED_ONLY:
        try:
            size = min(max(int(sizes.get(f"{name}_bytes") or 0), 0), MAX_SIZED)
        except ValueError:
            size = 0
        values[name] = "x" * size or None
    return to_request(values)


def _management(value) -> str:
    """The Management chosen; anything else is passed on as typed, so the domain refuses it
    beside the field (nothing chosen: the Companion, as before issue 17)."""
    return str(value) if value else Management.COMPANION


def _text(value) -> str | None:
    return value or None


def _profile_id(value) -> int:
    """The chosen profile's id; 0, which no profile has, for nothing or anything not a number
    (the domain then says "Choose one of the saved network profiles")."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) <= 19 else 0


def to_request(values: Mapping) -> QrCodeRequest:
    """The domain's request from the submitted values: a field that does not apply to the
    choices made is not read, whatever it holds."""
    state = WizardState.from_values(values)
    given = {name: values.get(name) if state.applies(name) else None for name in SHOWN_WHEN}
    validity, network = given["otp_validity"], state.network
    profile_id = None
    if state.profile:
        # The profile's network replaces this placeholder (portal.provisioning.qr_codes), so
        # an unknown profile is the only message, beside the select.
        network, profile_id = NetworkType.MOBILE, _profile_id(given["network_profile"])
    if state.applies("otp_unlimited") and state.otp_unlimited:
        validity = UNLIMITED
    return QrCodeRequest(
        option=state.option, management=_management(values.get("management")),
        # The wizard shows its Management choice: what the admin sees there is what is made,
        # whatever the Saved profile's Management says.
        management_given=bool(values.get("management")),
        lang=values.get("lang"), network=network,
        network_profile_id=profile_id,
        wifi_ssid=given["wifi_ssid"], wifi_security=state.wifi_security if state.wifi else None,
        wifi_password=_text(given["wifi_password"]), wifi_hidden=bool(given["wifi_hidden"]),
        username=_text(given["username"]), ldap_user=_text(given["ldap_user"]),
        usage_count=given["usage_count"], send_to_user=bool(given["send_to_user"]),
        alternative_email=_text(given["alternative_email"]), otp_validity=validity,
        name=_text(values.get("name")), time_zone=_text(values.get("time_zone")),
        wifi_eap_method=state.wifi_eap_method if state.applies("wifi_eap_method") else None,
        wifi_phase2=_text(given["wifi_phase2"]), wifi_identity=_text(given["wifi_identity"]),
        wifi_anonymous_identity=_text(given["wifi_anonymous_identity"]),
        wifi_domain=_text(given["wifi_domain"]),
        wifi_ca_certificate=_text(given["wifi_ca_certificate"]),
        wifi_user_certificate=_text(given["wifi_user_certificate"]),
        proxy_host=_text(given["proxy_host"]), proxy_port=given["proxy_port"],
        proxy_bypass=_text(given["proxy_bypass"]), pac_url=_text(given["pac_url"]))
