"""Network profiles: named Wi-Fi or mobile-data settings a QR code, a bulk batch or the Admin
API takes instead of typing the network again. Validated by the wizard's own rule
(portal.android.wifi); the Wi-Fi password is stored encrypted and never shown again."""
from dataclasses import dataclass

import sqlalchemy as sa

from portal import vault
from portal.accounts.validation import one_line_error
from portal.android.wifi import validate_wifi
from portal.audit.log import record
from portal.database import db, read_once, utcnow
from portal.settings.errors import SettingsError
from portal.settings.models import NetworkProfile
from portal.vocabulary import MANAGEMENT_LABELS, Management, NetworkType, SecurityType

MAX_NAME_LENGTH = 100
# validate_wifi names the fields as Android does; these are the profile form's names.
_FIELD = {"ssid": "wifi_ssid", "security_type": "wifi_security", "password": "wifi_password"}


class NetworkProfileError(SettingsError):
    """A profile cannot be saved or deleted; .errors maps each field to its message."""


@dataclass(frozen=True)
class ProfileValues:
    """What the admin enters. An empty password on an existing secured profile keeps the
    stored one."""
    name: str
    network: str                      # a NetworkType
    wifi_ssid: str | None = None
    wifi_security: str | None = None  # WPA, WEP or NONE (enterprise Wi-Fi is the wizard's)
    wifi_password: str | None = None
    wifi_hidden: bool = False
    management: str = Management.COMPANION  # what manages the devices of its QR codes


def listing() -> sa.Select:
    """Every profile by name; the id breaks a tie, so a page read by offset never shows a row
    twice or skips one."""
    return sa.select(NetworkProfile).order_by(NetworkProfile.name_key, NetworkProfile.id)


def all_profiles() -> list[NetworkProfile]:
    return db.session.scalars(listing()).all()


@read_once
def get(profile_id) -> NetworkProfile | None:
    """The profile with this id; None for anything else (an edited URL, a huge number)."""
    try:
        profile_id = int(profile_id)
    except (TypeError, ValueError):
        return None
    if not 1 <= profile_id <= 2**31 - 1:
        return None
    return db.session.get(NetworkProfile, profile_id)


def find(name: str | None) -> NetworkProfile | None:
    """The profile of this name, compared without regard to case."""
    key = _key(name)
    if not key or name_error(name):
        return None
    return db.session.scalar(sa.select(NetworkProfile).where(NetworkProfile.name_key == key))


def name_error(name: str | None) -> str | None:
    return one_line_error(name, max_length=MAX_NAME_LENGTH, empty="Enter a name for the profile.")


def validate(values: ProfileValues, *, profile: NetworkProfile | None = None) -> dict[str, str]:
    """Every problem at once, by the form's field names; {} when the profile can be saved."""
    errors = {}
    if message := name_error(values.name):
        errors["name"] = message
    else:
        other = find(values.name)
        if other is not None and (profile is None or other.id != profile.id):
            errors["name"] = f"A network profile named '{other.name}' already exists."
    if values.management not in tuple(Management):
        errors["management"] = "Choose Companion or Android Device Policy."
    if values.network not in tuple(NetworkType):
        errors["network"] = "Choose Wi-Fi or Mobile data."
    elif values.network == NetworkType.WIFI:
        if values.wifi_security == SecurityType.EAP:
            errors["wifi_security"] = ("A network profile holds WPA, WEP or open Wi-Fi; set up "
                                       "enterprise Wi-Fi (EAP) in the wizard.")
        else:
            password = _password(values, profile)
            for name, message in validate_wifi(values.wifi_ssid or "", values.wifi_security or "",
                                               password).items():
                if name == "password" and values.wifi_security != SecurityType.NONE \
                        and not values.wifi_password and password:
                    name = "wifi_password"  # the kept password no longer fits the type
                errors[_FIELD.get(name, name)] = message
    return errors


def save(values: ProfileValues, *, actor: str, profile: NetworkProfile | None = None,
         actor_type: str = "admin") -> NetworkProfile:
    """Create the profile, or change `profile`: its version goes up when a value the payload
    carries changed (a renamed profile stays the same version). Commits; raises
    NetworkProfileError with nothing written."""
    errors = validate(values, profile=profile)
    if errors:
        raise NetworkProfileError(errors)
    wifi = values.network == NetworkType.WIFI
    password = _password(values, profile) if wifi else None
    new = {"network": values.network,
           "wifi_ssid": values.wifi_ssid if wifi else None,
           "wifi_security": values.wifi_security if wifi else None,
           "wifi_hidden": bool(values.wifi_hidden) if wifi else False,
           "management": values.management}
    password = password if wifi and values.wifi_security != SecurityType.NONE else None
    creating = profile is None
    if creating:
        profile = NetworkProfile(version=1, created_at=utcnow())
        db.session.add(profile)
        changed = True
    else:
        changed = any(getattr(profile, column) != value for column, value in new.items()) or \
            password != _stored_password(profile)
        if changed:
            profile.version += 1
    for column, value in new.items():
        setattr(profile, column, value)
    if changed:
        profile.wifi_password_enc = vault.encrypt(password) if password else None
    profile.name, profile.name_key = values.name.strip(), _key(values.name)
    profile.updated_at, profile.updated_by = utcnow(), actor
    try:
        db.session.flush()
    except sa.exc.IntegrityError:  # another admin saved this name a moment ago
        db.session.rollback()
        raise NetworkProfileError({"name": f"A network profile named '{values.name.strip()}' "
                                           "already exists."}) from None
    record("network_profile.create" if creating else "network_profile.update",
           actor_type=actor_type, actor=actor, target=profile.name, version=profile.version,
           network=profile.network, ssid=profile.wifi_ssid, management=profile.management)
    db.session.commit()
    return profile


def delete(profile: NetworkProfile, *, actor: str, actor_type: str = "admin") -> None:
    """Delete the profile; the QR codes made from it keep their payload (and lose the link)."""
    name = profile.name
    db.session.delete(profile)
    record("network_profile.delete", actor_type=actor_type, actor=actor, target=name)
    db.session.commit()


def describe(profile: NetworkProfile) -> str:
    """What the profile is, in the console's words: "Wi-Fi School (WPA)", "Mobile data"."""
    if profile.network != NetworkType.WIFI:
        return "Mobile data"
    security = "open" if profile.wifi_security == SecurityType.NONE else profile.wifi_security
    return f"Wi-Fi {profile.wifi_ssid} ({security}{', hidden' if profile.wifi_hidden else ''})"


def management_label(profile: NetworkProfile) -> str:
    """"Companion" or "Android Device Policy"."""
    return MANAGEMENT_LABELS.get(profile.management, profile.management)


def request_values(profile: NetworkProfile) -> dict:
    """The profile as a QrCodeRequest's network fields (the password decrypted) and its
    Management."""
    return {"network": profile.network, "wifi_ssid": profile.wifi_ssid,
            "wifi_security": profile.wifi_security,
            "wifi_password": _stored_password(profile), "wifi_hidden": profile.wifi_hidden,
            "management": profile.management or Management.COMPANION}


def _password(values: ProfileValues, profile: NetworkProfile | None) -> str | None:
    """The password typed, or the one kept when the field is left empty."""
    if values.wifi_password:
        return values.wifi_password
    return _stored_password(profile) if profile is not None else None


def _stored_password(profile: NetworkProfile) -> str | None:
    return vault.decrypt(profile.wifi_password_enc) if profile.wifi_password_enc else None


def _key(name: str | None) -> str:
    return (name or "").strip().casefold()
