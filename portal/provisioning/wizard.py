"""The QR-code wizard's choices as one object: which fields apply, and the request they make."""
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from portal.provisioning.qr_codes import UNLIMITED, QrCodeRequest
from portal.vocabulary import EnrollmentOption, NetworkType, SecurityType, UserType

# Each field applies only while all of its conditions hold. A condition is a property of
# WizardState and, by the same name, a `[data-when~=name]` rule in static/css/portal.css, so the
# browser shows exactly the fields this table lets into the request, with no request of its own.
SHOWN_WHEN: dict[str, tuple[str, ...]] = {
    "user_type": ("auto",),
    "username": ("auto", "local"),
    "ldap_bind": ("auto", "ldap"),
    "ldap_password": ("auto", "ldap"),
    "ldap_query": ("auto", "ldap"),
    "ldap_user": ("auto", "ldap"),
    "usage_count": ("auto",),
    "wifi_ssid": ("wifi",),
    "wifi_security": ("wifi",),
    "wifi_password": ("wifi", "secured"),
    "wifi_hidden": ("wifi",),
    "send_to_user": ("auto",),
    "alternative_email": ("alternative",),
    "define_otp": ("auto",),
    "otp_unlimited": ("auto", "define_otp"),
    "otp_validity": ("auto", "define_otp", "limited"),
}
CONDITIONS = ("auto", "ssp", "local", "ldap", "wifi", "mobile", "secured", "alternative",
              "define_otp", "limited")


def _member(enum: type[StrEnum], value, default: StrEnum) -> StrEnum:
    try:
        return enum(value)
    except ValueError:
        return default  # unknown or missing: the form's own check says so


@dataclass(frozen=True)
class WizardState:
    """The choices made so far; the form's defaults when nothing was chosen."""
    option: EnrollmentOption = EnrollmentOption.SSP
    user_type: UserType = UserType.LOCAL
    network: NetworkType = NetworkType.WIFI
    wifi_security: SecurityType = SecurityType.WPA
    send_alternative: bool = False
    define_otp: bool = False
    otp_unlimited: bool = False

    @classmethod
    def from_values(cls, values: Mapping) -> "WizardState":
        return cls(option=_member(EnrollmentOption, values.get("option"), cls.option),
                   user_type=_member(UserType, values.get("user_type"), cls.user_type),
                   network=_member(NetworkType, values.get("network"), cls.network),
                   wifi_security=_member(SecurityType, values.get("wifi_security"),
                                         cls.wifi_security),
                   send_alternative=bool(values.get("send_alternative")),
                   define_otp=bool(values.get("define_otp")),
                   otp_unlimited=bool(values.get("otp_unlimited")))

    auto = property(lambda self: self.option == EnrollmentOption.AUTO)
    ssp = property(lambda self: self.option == EnrollmentOption.SSP)
    local = property(lambda self: self.user_type == UserType.LOCAL)
    ldap = property(lambda self: self.user_type == UserType.LDAP)
    wifi = property(lambda self: self.network == NetworkType.WIFI)
    mobile = property(lambda self: self.network == NetworkType.MOBILE)
    secured = property(lambda self: self.wifi_security != SecurityType.NONE)
    alternative = property(lambda self: self.send_alternative)
    limited = property(lambda self: not self.otp_unlimited)

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


def _text(value) -> str | None:
    return value or None


def to_request(values: Mapping) -> QrCodeRequest:
    """The domain's request from the submitted values: a field that does not apply to the
    choices made is not read, whatever it holds."""
    state = WizardState.from_values(values)
    given = {name: values.get(name) if state.applies(name) else None for name in SHOWN_WHEN}
    validity = given["otp_validity"]
    if state.applies("otp_unlimited") and state.otp_unlimited:
        validity = UNLIMITED
    return QrCodeRequest(
        option=state.option, lang=values.get("lang"), network=state.network,
        wifi_ssid=given["wifi_ssid"], wifi_security=state.wifi_security if state.wifi else None,
        wifi_password=_text(given["wifi_password"]), wifi_hidden=bool(given["wifi_hidden"]),
        username=_text(given["username"]), ldap_user=_text(given["ldap_user"]),
        usage_count=given["usage_count"], send_to_user=bool(given["send_to_user"]),
        alternative_email=_text(given["alternative_email"]), otp_validity=validity,
        name=_text(values.get("name")))
