"""The product's words for its choices and states, one name each (the stored values).

StrEnum members are the strings stored in the database and sent in forms, so a member
compares equal to its value and can be written wherever the string was."""
from enum import StrEnum


class EnrollmentOption(StrEnum):
    SSP = "ssp"    # Self Service Portal: a reusable QR, the user signs in on the device
    AUTO = "auto"  # Automatic Provisioning: the QR carries the user and a one-time password


class Management(StrEnum):
    """What manages a device enrolled from a QR code (issue 17)."""
    COMPANION = "companion"  # our Companion app (the Companion API), the default
    ADP = "adp"              # Google's Android Device Policy, through the Android Management API


MANAGEMENT_LABELS = {Management.COMPANION: "Companion", Management.ADP: "Android Device Policy"}


class AmapiTaskKind(StrEnum):
    """Work the portal owes Google, retried by the worker until done."""
    DELETE_TOKEN = "delete_token"      # an enrollment token no longer needed (used, expired, revoked)
    REMOVE_SIGNIN = "remove_signin"    # a Self Service QR code's sign-in details
    DELETE_DEVICE = "delete_device"    # a retired device: deleted (and wiped) at Google


class UserType(StrEnum):
    LDAP = "ldap"
    LOCAL = "local"


class UserSource(StrEnum):
    LOCAL = "local"
    LDAP = "ldap"
    AZURE = "azure"


class NetworkType(StrEnum):
    WIFI = "wifi"
    MOBILE = "mobile"


class SecurityType(StrEnum):
    WPA = "WPA"
    WEP = "WEP"
    EAP = "EAP"    # WPA/WPA2-Enterprise (802.1X), Android 10+
    NONE = "NONE"


class EapMethod(StrEnum):
    """The EAP methods the wizard offers (Android also knows SIM, AKA and AKA_PRIME)."""
    PEAP = "PEAP"
    TTLS = "TTLS"
    TLS = "TLS"
    PWD = "PWD"


class Phase2(StrEnum):
    NONE = "NONE"
    PAP = "PAP"
    MSCHAP = "MSCHAP"
    MSCHAPV2 = "MSCHAPV2"
    GTC = "GTC"


class ProxyKind(StrEnum):
    NONE = "none"
    MANUAL = "manual"  # host, port, bypass list
    PAC = "pac"        # a proxy auto-configuration URL


class DeviceState(StrEnum):
    PROVISIONING = "provisioning"
    ENROLLED = "enrolled"
    FAILED = "failed"
    RETIRED = "retired"


class PendingState(StrEnum):
    PENDING = "pending"
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"


class AdminRole(StrEnum):
    ADMINISTRATOR = "administrator"  # everything
    HELPDESK = "helpdesk"            # devices, pending enrollments, QR codes; no Admin settings


class ApiScope(StrEnum):
    READ = "read"            # the Admin API's reads, without secrets
    PROVISION = "provision"  # everything: create, revoke, retire, payloads and OTPs
