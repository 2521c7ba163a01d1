"""Creating QR codes: validation, the frozen payload, pending enrollments and licenses."""
import dataclasses
import secrets
from dataclasses import dataclass, field

import sqlalchemy as sa

from portal import otp as otps
from portal import vault
from portal.accounts.directory import picked_user, record_picked_user
from portal.accounts.validation import address_error, one_line_error
from portal.accounts.models import AdminUser, PortalUser
from portal.accounts.users import find_local_user
from portal.amapi.client import AmapiError
from portal.android.payload import (PayloadSettings, build_payload, densest_field,
                                    draft_payload, encode_payload, payload_bytes,
                                    validate_settings)
from portal.android.qr import version_for_size
from portal.android.wifi import EapSettings
from portal.audit.log import record
from portal.database import db, end_transaction, utcnow
from portal.enrollment.models import PendingEnrollment, QrCode
from portal.enrollment.pending import expire_due
from portal.errors import WHOLE, DomainError
from portal.licensing import seats
from portal.mail.outbox import queue_for_qr_code
from portal.provisioning import device_policy
from portal.settings import companion, localizations, network_profiles, otp_policy
from portal.vocabulary import (AdminRole, EnrollmentOption, Management, NetworkType, PendingState,
                               SecurityType)

MAX_USAGE_COUNT = 10_000
MAX_NAME_LENGTH = 100
UNLIMITED_FOR_ADMINISTRATORS = "Only an Administrator may define an Unlimited OTP."
UNLIMITED = "unlimited"
# provisioning.payload names the Wi-Fi settings as Android does; these are the request's names.
_REQUEST_FIELD = {"ssid": "wifi_ssid", "security_type": "wifi_security",
                  "password": "wifi_password", "lang": "lang", "time_zone": "time_zone",
                  "eap_method": "wifi_eap_method", "phase2": "wifi_phase2",
                  "identity": "wifi_identity", "anonymous_identity": "wifi_anonymous_identity",
                  "domain": "wifi_domain", "ca_certificate": "wifi_ca_certificate",
                  "user_certificate": "wifi_user_certificate", "proxy_host": "proxy_host",
                  "proxy_port": "proxy_port", "proxy_bypass": "proxy_bypass",
                  "pac_url": "pac_url", "management": "management", "payload": WHOLE}
_COMPANION_FIELDS = ("component_name", "download_url", "signature_checksum")
_GENERATED = ("option", "network", "qr_id", "otp")  # checked or made by the portal itself


class ProvisioningError(DomainError):
    """The QR code cannot be created; .errors maps the request's fields to messages
    ("companion": the Companion settings; WHOLE: the request as a whole)."""


class GoogleRefused(ProvisioningError):
    """Android Device Policy: Google did not make the token (or sign-in details); .errors =
    {"management": Google's failure as a plain sentence}; .transient when trying again later
    may work. Nothing was saved."""

    def __init__(self, error: AmapiError):
        super().__init__({"management": error.message})
        self.transient = error.transient


@dataclass(frozen=True)
class QrCodeRequest:
    option: str                       # an EnrollmentOption
    lang: str
    network: str                      # a NetworkType
    wifi_ssid: str | None = None
    wifi_security: str | None = None  # a SecurityType
    wifi_password: str | None = None
    wifi_hidden: bool = False
    user: PortalUser | None = field(default=None, compare=False)
    username: str | None = None       # a local user's name, when `user` is not given
    ldap_user: str | None = None      # or the directory user picked (accounts.directory token)
    usage_count: int | None = None
    send_to_user: bool = False
    alternative_email: str | None = None
    # None: the OTP policy's default; "unlimited"; or a number of hours.
    otp_validity: int | str | None = None
    name: str | None = None           # optional, one line, to tell QR codes apart
    # Provisioning options (android-qr.md §2). The certificates are the payload's values
    # (portal.android.certificates turns an upload into one).
    time_zone: str | None = None
    wifi_eap_method: str | None = None     # an EapMethod, with wifi_security EAP
    wifi_phase2: str | None = None         # a Phase2
    wifi_identity: str | None = None
    wifi_anonymous_identity: str | None = None
    wifi_domain: str | None = None
    wifi_ca_certificate: str | None = None
    wifi_user_certificate: str | None = None
    proxy_host: str | None = None
    proxy_port: int | None = None
    proxy_bypass: str | None = None
    pac_url: str | None = None
    # A saved network profile (its id): its network settings replace the ones above.
    network_profile_id: int | None = None
    # What manages the device: the Companion, or Android Device Policy (a vocabulary.Management).
    # A network profile's Management replaces it, unless management_given: chosen for this QR
    # code itself (a bulk row's, the Admin API's "management").
    management: str = Management.COMPANION
    management_given: bool = False


@dataclass(frozen=True)
class Density:
    """How dense the QR code of a request would be, and the field to shorten if it is."""
    version: int | None   # None: over the capacity of any QR code
    size: int
    densest: str          # a QrCodeRequest field name, or "companion" / WHOLE


def create_qr_code(request: QrCodeRequest, *, created_by: AdminUser | None,
                   server_url: str, actor: tuple[str, str] | None = None) -> QrCode:
    """Create a QR code in one transaction: for Automatic Provisioning also its Usage Count
    pending enrollments, reserving one license each, and its mail in the outbox. A directory
    user picked in the wizard is recorded (and committed) first, even if the QR is refused.

    Raises ProvisioningError (no QR code written) on bad input or when too few licenses remain.
    actor: (actor_type, name) for the audit log when no admin creates it (an Admin API token).
    """
    expire_due()
    request = _with_user(request, record=True)
    errors = validate_request(request, server_url=server_url, created_by=created_by)
    request, profile = _with_profile(request)
    if errors:
        raise ProvisioningError(errors)
    public_id = secrets.token_urlsafe(9)
    google = _google_enrollment(request, public_id, server_url) \
        if request.management == Management.ADP else None
    try:
        qr_code = prepare_qr_code(request, profile, created_by=created_by,
                                  server_url=server_url, public_id=public_id, google=google)
        if request.option == EnrollmentOption.AUTO and not seats.reserve(request.usage_count):
            _refuse_reservation(request.usage_count)
        add_qr_code(qr_code, request, created_by=created_by, actor=actor)
        db.session.commit()
    except BaseException:
        if google is not None:  # Google made a token for a QR code that is not saved
            db.session.rollback()
            device_policy.give_back(google)
        raise
    return qr_code


def _google_enrollment(request: QrCodeRequest, public_id: str, server_url: str):
    """Android Device Policy: Google's token (or sign-in details) for the QR code, before the
    transaction; a refusal is the Management field's error and nothing is saved."""
    try:
        return google_enrollment(request, public_id, server_url=server_url)
    except AmapiError as error:
        raise GoogleRefused(error) from None


def google_enrollment(request: QrCodeRequest, public_id: str, *, server_url: str,
                      policy=None, connection=None):
    """What Google makes for the (resolved) request's QR code of this public id: a
    device_policy.GoogleEnrollment. policy: the OTP policy (read when not given); connection:
    an amapi Connection to reuse (a bulk batch asks for many). Raises AmapiError.
    Ends the caller's transaction (it has only read so far) before Google is asked."""
    validity_hours = _validity_hours(request, policy or otp_policy.current())
    connection = connection or device_policy.connection()
    if request.user is not None:
        request.user.id  # noqa: B018  (loaded now: the token names the user by id)
    end_transaction()
    return device_policy.obtain(
        request.option, public_id, user=request.user, usage_count=request.usage_count,
        validity_hours=validity_hours, server_url=server_url, connection=connection)


@dataclass(frozen=True)
class Preparation:
    """What every QR code of one transaction shares: read once (a bulk batch prepares many)."""
    companion_config: object
    policy: object
    now: object

    @classmethod
    def current(cls) -> "Preparation":
        return cls(companion.current(), otp_policy.current(), utcnow())


def prepare_qr_code(request: QrCodeRequest, profile, *, created_by: AdminUser | None,
                    server_url: str, shared: Preparation | None = None,
                    public_id: str | None = None, google=None) -> QrCode:
    """The QR code of a validated request (its profile already applied by _with_profile), not
    yet in the session: payload, encryption, OTP and QR version (the slow part). Writes
    nothing; add_qr_code puts it in the caller's transaction. google: for Android Device
    Policy, what Google made for it (device_policy.GoogleEnrollment, made for public_id): its
    token is the payload's admin extras and the QR code's OTP."""
    shared = shared or Preparation.current()
    companion_config, now, policy = shared.companion_config, shared.now, shared.policy
    auto = request.option == EnrollmentOption.AUTO
    if google is not None:
        otp = google.token_value if auto else None
    else:
        otp = otps.for_qr_code() if auto else None
    qr_code = QrCode(public_id=public_id or secrets.token_urlsafe(9), option=request.option,
                     lang=request.lang, network=request.network,
                     management=Management.ADP if google is not None else Management.COMPANION,
                     enrollment_token_name=google.token_name if google is not None else None,
                     created_by_id=created_by.id if created_by else None,
                     created_at=now, send_to_user=request.send_to_user, name=request.name or None,
                     alternative_email=request.alternative_email or None)
    settings = _settings(request, qr_code.public_id, otp, companion_config, server_url, google)
    text = encode_payload(build_payload(settings))
    # From the capacity table: the drawn symbol's version (tests/android/test_qr.py checks they
    # agree) without drawing it, which took most of a bulk batch's time.
    qr_code.payload_enc = vault.encrypt(text)
    qr_code.qr_version = version_for_size(payload_bytes(text))
    if google is None:  # an Android Device Policy QR code names no Companion: never stale
        for column, value in QrCode.companion_values(companion_config).items():
            setattr(qr_code, column, value)
    _apply_network(qr_code, request)
    qr_code.time_zone = request.time_zone or None
    if profile is not None:
        qr_code.network_profile_id, qr_code.network_profile_version = profile.id, profile.version
    if otp is not None:
        qr_code.usage_count = request.usage_count
        qr_code.otp_enc, qr_code.otp_hash = vault.encrypt(otp), otps.keyed_hash(otp)
        qr_code.otp_expires_at = otps.expires_at(_validity_hours(request, policy), now)
    return qr_code


def add_qr_code(qr_code: QrCode, request: QrCodeRequest, *, created_by: AdminUser | None,
                pending: bool = True, actor: tuple[str, str] | None = None, **audit) -> None:
    """Put a prepared QR code in the caller's transaction (no commit): the QR, its pending
    enrollments (their licenses must be reserved already, with seats.reserve), its mail in
    the outbox and its audit entry. pending=False: the caller inserts the pending enrollments
    itself (pending_rows), all at once. actor: as create_qr_code's."""
    if request.user is not None and request.option == EnrollmentOption.AUTO:
        qr_code.user_id = request.user.id
    db.session.add(qr_code)
    db.session.flush()
    if pending and request.option == EnrollmentOption.AUTO:
        db.session.execute(sa.insert(PendingEnrollment), pending_rows(qr_code))
    queue_for_qr_code(qr_code, request.user)
    actor_type, actor_name = actor or (("admin", created_by.username) if created_by
                                       else ("operator", "operator"))
    record("qr_code.create", actor_type=actor_type, actor=actor_name, target=qr_code.public_id,
           option=request.option, usage_count=request.usage_count, network=request.network,
           lang=request.lang, name=request.name or None, **audit)


def pending_rows(qr_code: QrCode) -> list[dict]:
    """The rows of an automatic QR code's pending enrollments, one per use, for one insert."""
    return [{"qr_code_id": qr_code.id, "state": PendingState.PENDING,
             "expires_at": qr_code.otp_expires_at, "created_at": qr_code.created_at}
            for _ in range(qr_code.usage_count or 0)]


def validate_request(request: QrCodeRequest, *, server_url: str,
                     created_by: AdminUser | None = None) -> dict[str, str]:
    """Every problem with the request at once, by the request's field names; {} when it can
    be saved. Writes nothing. An Unlimited OTP only an Administrator (or the operator) may
    define."""
    request = _with_user(request, record=False)
    request, profile = _with_profile(request)
    errors = _request_errors(request)
    if request.network_profile_id is not None and profile is None:
        errors["network_profile"] = "Choose one of the saved network profiles."
    if (request.option == EnrollmentOption.AUTO and request.otp_validity == UNLIMITED
            and created_by is not None and created_by.role != AdminRole.ADMINISTRATOR):
        errors["otp_validity"] = UNLIMITED_FOR_ADMINISTRATORS
    google = None
    if request.management == Management.ADP:
        if message := device_policy.configuration_error(request.option):
            errors["management"] = message
            return errors
        google = device_policy.PLACEHOLDER
    companion_config = companion.current()
    if companion_config is None and google is None:
        errors["companion"] = "The Companion is not configured yet."
        return errors
    # Placeholders of the real lengths, so the size check sees the payload as it will be.
    auto = request.option == EnrollmentOption.AUTO
    placeholder_otp = "x" * otp_policy.current().length if auto else None
    settings = _settings(request, "x" * 12, placeholder_otp, companion_config, server_url,
                         google)
    for name, message in _payload_errors(validate_settings(settings), _user_field(request)):
        errors.setdefault(name, message)
    return errors


def density(request: QrCodeRequest, *, server_url: str) -> Density | None:
    """The QR version the request's payload would need, as it is typed: the wizard's live
    indicator. Writes nothing; None without a Companion."""
    request = _with_user(request, record=False)
    request, _ = _with_profile(request)
    google = device_policy.PLACEHOLDER if request.management == Management.ADP else None
    companion_config = companion.current()
    if companion_config is None and google is None:
        return None
    auto = request.option == EnrollmentOption.AUTO
    placeholder_otp = "x" * len(otps.for_qr_code()) if auto else None
    settings = _settings(request, "x" * 12, placeholder_otp, companion_config, server_url,
                         google)
    size = payload_bytes(encode_payload(draft_payload(settings)))
    try:
        version = version_for_size(size)
    except ValueError:
        version = None
    name = densest_field(settings)
    field = next((field for field, _ in _payload_errors({name: ""}, _user_field(request))),
                 WHOLE)
    return Density(version, size, field)


def _with_user(request: QrCodeRequest, *, record: bool) -> QrCodeRequest:
    """The request with its user: the one given, the local user named, or the directory user
    picked (recorded only when `record`; for a check, an unsaved user from the pick)."""
    if request.user is not None or request.option != EnrollmentOption.AUTO:
        return request
    if request.ldap_user:
        user = record_picked_user(request.ldap_user) if record else _unrecorded(request.ldap_user)
        if record:
            db.session.commit()  # the directory user is known from now on, saved or not
    elif request.username:
        user = find_local_user(request.username)
    else:
        return request
    return dataclasses.replace(request, user=user)


def _with_profile(request: QrCodeRequest):
    """The request with its network profile's settings in place of its own network fields
    (Wi-Fi options the profile does not hold, such as EAP and proxy, cleared), and the profile;
    (request, None) without one or when it is unknown. The profile's Management too, unless
    the request's own is given (management_given)."""
    if request.network_profile_id is None:
        return request, None
    profile = network_profiles.get(request.network_profile_id)
    if profile is None:
        return request, None
    cleared = {name: None for name in ("wifi_eap_method", "wifi_phase2", "wifi_identity",
                                       "wifi_anonymous_identity", "wifi_domain",
                                       "wifi_ca_certificate", "wifi_user_certificate",
                                       "proxy_host", "proxy_port", "proxy_bypass", "pac_url")}
    values = network_profiles.request_values(profile)
    if request.management_given:
        values.pop("management")
    return dataclasses.replace(request, **cleared, **values), profile


def _unrecorded(token: str) -> PortalUser | None:
    picked = picked_user(token)
    return None if picked is None else PortalUser(username=picked["u"], active=True)


def _user_field(request: QrCodeRequest) -> str:
    return "ldap_user" if request.ldap_user else "username"


def name_error(name: str | None) -> str | None:
    """The QR code's Name: optional, one line of at most MAX_NAME_LENGTH characters."""
    return one_line_error(name, max_length=MAX_NAME_LENGTH)


def _request_errors(request: QrCodeRequest) -> dict[str, str]:
    errors = {}
    if message := name_error(request.name):
        errors["name"] = message
    if request.option not in tuple(EnrollmentOption):
        errors["option"] = "Choose Self Service Portal or Automatic Provisioning."
    if not localizations.is_known(request.lang):
        errors["lang"] = "Choose one of the portal's Localizations."
    if request.network not in tuple(NetworkType):
        errors["network"] = "Choose Wi-Fi or Mobile data."
    if request.management not in tuple(Management):
        errors["management"] = "Choose Companion or Android Device Policy."
    if request.alternative_email and (message := address_error(request.alternative_email)):
        errors["alternative_email"] = message
    if request.option == EnrollmentOption.AUTO:
        errors.update(_user_errors(request))
        errors.update(_auto_errors(request))
    return errors


def _user_errors(request: QrCodeRequest) -> dict[str, str]:
    if request.user is None and request.ldap_user:
        message = "Search the directory and choose the user the devices are enrolled for."
    elif request.user is None and request.username:
        message = f"No local user is named '{request.username}'."
    elif request.user is None:
        message = "Choose the user the devices are enrolled for."
    elif not request.user.active:
        message = f"The user '{request.user.username}' is disabled."
    else:
        return {}
    return {_user_field(request): message}


def _auto_errors(request: QrCodeRequest) -> dict[str, str]:
    errors = {}
    remaining = seats.figures().remaining
    count = request.usage_count
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        errors["usage_count"] = "Usage Count must be a whole number, 1 or more."
    elif count > min(remaining, MAX_USAGE_COUNT):
        errors["usage_count"] = _too_few_licenses(count, remaining)
    validity = request.otp_validity
    if validity not in (None, UNLIMITED) and (
            not isinstance(validity, int) or isinstance(validity, bool)
            or not 1 <= validity <= 87600):
        errors["otp_validity"] = "The OTP validity must be 1 to 87,600 hours, or Unlimited."
    return errors


def usage_count_rule(remaining: int) -> str:
    """The one rule of the Usage Count, as the wizard's hint and its error both state it:
    1 to min(MAX_USAGE_COUNT, the licenses that remain)."""
    if remaining <= 0:
        return "No licenses remain: free some or add licenses before creating this QR code."
    plural = "s that remain" if remaining != 1 else " that remains"
    return (f"Enter 1 to {min(MAX_USAGE_COUNT, remaining):,}: at most {MAX_USAGE_COUNT:,} per "
            f"QR code, and at most the {remaining:,} license{plural}.")


def _too_few_licenses(count: int, remaining: int) -> str:
    if remaining <= 0:
        return usage_count_rule(remaining)
    return f"Usage Count {count:,} is too many. {usage_count_rule(remaining)}"


def _validity_hours(request: QrCodeRequest, policy) -> int | None:
    if request.otp_validity is None:
        return policy.validity_hours
    return None if request.otp_validity == UNLIMITED else request.otp_validity


def _settings(request, qr_id, otp, companion_config, server_url,
              google=None) -> PayloadSettings:
    """The payload settings of a request. google (a device_policy.GoogleEnrollment): Android
    Device Policy and Google's token in place of the Companion, its user and OTP."""
    user = request.user.username if request.user is not None and otp else None
    admin_extras = google_keys = None
    if google is not None:
        companion_config, admin_extras, google_keys = google.parts()
        user = otp = None
    eap = None
    if request.wifi_security == SecurityType.EAP:
        eap = EapSettings(method=request.wifi_eap_method, phase2=request.wifi_phase2,
                          identity=request.wifi_identity,
                          anonymous_identity=request.wifi_anonymous_identity,
                          domain=request.wifi_domain, ca_certificate=request.wifi_ca_certificate,
                          user_certificate=request.wifi_user_certificate)
    return PayloadSettings(
        companion=companion_config, server_url=server_url, option=request.option, qr_id=qr_id,
        lang=request.lang, network=request.network, wifi_ssid=request.wifi_ssid,
        wifi_security_type=request.wifi_security, wifi_password=request.wifi_password or None,
        wifi_hidden=request.wifi_hidden, user=user, otp=otp,
        time_zone=request.time_zone or None, wifi_eap=eap,
        proxy_host=request.proxy_host or None, proxy_port=request.proxy_port,
        proxy_bypass=request.proxy_bypass or None, pac_url=request.pac_url or None,
        admin_extras=admin_extras, google_keys=google_keys)


def _payload_errors(payload_errors: dict[str, str], user_field: str):
    """provisioning.payload's findings as (request field, message) pairs."""
    for name, message in payload_errors.items():
        if name in _COMPANION_FIELDS:
            yield "companion", f"The Companion settings are not valid for a QR code: {message}"
        elif name == "user":
            yield user_field, message
        elif name not in _GENERATED:
            yield _REQUEST_FIELD.get(name, WHOLE), message


def _apply_network(qr_code: QrCode, request: QrCodeRequest) -> None:
    """The network settings, as the payload carries them; secrets encrypted (never audited)."""
    if request.network != NetworkType.WIFI:
        return
    qr_code.wifi_ssid, qr_code.wifi_security = request.wifi_ssid, request.wifi_security
    qr_code.wifi_hidden = request.wifi_hidden
    if request.wifi_security != SecurityType.NONE and request.wifi_password:
        qr_code.wifi_password_enc = vault.encrypt(request.wifi_password)
    if request.wifi_security == SecurityType.EAP:
        qr_code.wifi_eap_method, qr_code.wifi_phase2 = request.wifi_eap_method, \
            request.wifi_phase2 or None
        qr_code.wifi_identity = request.wifi_identity
        qr_code.wifi_anonymous_identity = request.wifi_anonymous_identity or None
        qr_code.wifi_domain = request.wifi_domain or None
        qr_code.wifi_ca_certificate = request.wifi_ca_certificate or None
        if request.wifi_user_certificate:
            qr_code.wifi_user_certificate_enc = vault.encrypt(request.wifi_user_certificate)
    if request.proxy_host:
        qr_code.proxy_host, qr_code.proxy_port = request.proxy_host, request.proxy_port
        qr_code.proxy_bypass = request.proxy_bypass or None
    elif request.pac_url:
        qr_code.pac_url = request.pac_url


def _refuse_reservation(count: int):
    # The conditional UPDATE is the real guard: two admins saving at once cannot both take
    # the last licenses, whatever the check above saw a moment ago.
    remaining = seats.figures().remaining
    db.session.rollback()
    raise ProvisioningError({"usage_count": _too_few_licenses(count, remaining)})


def view_otp(qr_code: QrCode, *, viewed_by: AdminUser) -> str:
    """Decrypt the QR's OTP for View OTP, and record who looked."""
    if qr_code.otp_enc is None:
        raise ValueError("A Self Service Portal QR code has no OTP.")
    record("qr_code.view_otp", actor_type="admin", actor=viewed_by.username,
           target=qr_code.public_id)
    db.session.commit()
    return vault.decrypt(qr_code.otp_enc)


def resolve(request: QrCodeRequest, *, record: bool = False):
    """The request with its user and its network profile's settings in place, and the profile
    (None without one): what prepare_qr_code takes. record: record a picked directory user
    (added to the session, not committed)."""
    if record and request.user is None and request.ldap_user \
            and request.option == EnrollmentOption.AUTO:
        request = dataclasses.replace(request, user=record_picked_user(request.ldap_user))
    return _with_profile(_with_user(request, record=False))
