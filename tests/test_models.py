"""The database itself refuses rows that break the product's rules (CHECK, UNIQUE, NOT NULL)."""
import secrets

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal.accounts.models import AdminUser, PortalUser
from portal.enrollment.models import Device, PendingEnrollment, QrCode, ZeroTouchEntry
from portal.licensing.models import LicensePool
from portal.mail.models import OutboxMessage
from portal.settings.models import OtpPolicy


def refused(db, *rows):
    """True when flushing the rows raises IntegrityError (and nothing stays written)."""
    try:
        with db.session.begin_nested():
            db.session.add_all(rows)
            db.session.flush()
    except IntegrityError:
        return True
    return False


def qr_row(**overrides):
    values = dict(public_id=secrets.token_urlsafe(9), option="ssp", lang="en", network="wifi",
                  wifi_ssid="Corp", wifi_security="NONE", payload_enc="x", qr_version=10)
    values.update(overrides)
    return QrCode(**values)


@pytest.fixture
def user(db):
    user = PortalUser(source="local", username="alice", password_hash="h")
    db.session.add(user)
    db.session.flush()
    return user


def test_a_valid_ssp_and_auto_qr_code_are_accepted(db, user):
    assert not refused(db, qr_row())
    assert not refused(db, qr_row(option="auto", user_id=user.id, usage_count=3, otp_enc="e",
                                  otp_hash="h", network="mobile", wifi_ssid=None,
                                  wifi_security=None))


@pytest.mark.parametrize("overrides", [
    {"option": "both"},
    {"network": "cable"},
    {"wifi_security": "WPA2"},
    {"wifi_ssid": None},
    {"wifi_security": "WPA"},                                    # WPA without a password
    {"wifi_password_enc": "e"},                                  # NONE with a password
    {"network": "mobile"},                                       # mobile with Wi-Fi settings
    {"public_id": "short"},
    {"usage_count": 5},                                          # ssp has no usage count
    {"otp_hash": "h", "otp_enc": "e"},                           # ssp has no OTP
    {"option": "auto", "usage_count": 1, "otp_hash": "h", "otp_enc": "e"},  # auto needs a user
], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_qr_codes_that_break_a_rule_are_refused(db, overrides):
    assert refused(db, qr_row(**overrides))


def test_auto_qr_code_needs_a_usage_count_of_at_least_one(db, user):
    assert refused(db, qr_row(option="auto", user_id=user.id, usage_count=0, otp_enc="e",
                              otp_hash="h"))


def test_qr_public_ids_are_unique(db):
    assert refused(db, qr_row(public_id="same-id-123"), qr_row(public_id="same-id-123"))


@pytest.mark.parametrize("total,used,reserved", [
    (-1, 0, 0), (5, -1, 0), (5, 0, -1), (5, 3, 3),
])
def test_license_pool_can_never_be_overspent_or_negative(db, total, used, reserved):
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            db.session.execute(sa.update(LicensePool).where(LicensePool.id == 1)
                               .values(total=total, used=used, reserved=reserved))


def test_license_pool_and_otp_policy_are_singletons(db):
    assert refused(db, LicensePool(id=2, total=1))
    assert refused(db, OtpPolicy(id=2))


@pytest.mark.parametrize("values", [
    {"length": 5}, {"length": 65}, {"alphabet": "emoji"}, {"validity_hours": 0},
])
def test_otp_policy_values_out_of_range_are_refused(db, values):
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            db.session.execute(sa.update(OtpPolicy).where(OtpPolicy.id == 1).values(**values))


def test_admin_user_names_are_unique(db):
    make = lambda: AdminUser(username="root", email="r@example.com", password_hash="h")  # noqa
    assert refused(db, make(), make())


def test_local_users_need_a_password_and_a_known_source(db):
    assert refused(db, PortalUser(source="local", username="nopass"))
    assert refused(db, PortalUser(source="google", username="x", password_hash="h"))
    assert not refused(db, PortalUser(source="ldap", username="fromdirectory",
                                      directory_id="uid=x,dc=example,dc=org"))


def test_same_user_name_may_exist_once_per_source(db):
    assert not refused(db, PortalUser(source="local", username="bob", password_hash="h"),
                       PortalUser(source="ldap", username="bob"))
    assert refused(db, PortalUser(source="local", username="carol", password_hash="h"),
                   PortalUser(source="local", username="carol", password_hash="h"))


def _device(qr, user, **overrides):
    values = dict(public_id=secrets.token_urlsafe(9), qr_code_id=qr.id, user_id=user.id,
                  serial_number="R58N123ABC", manufacturer="samsung", model="SM-G991B",
                  android_api_level=33, token_hash=secrets.token_hex(32))
    values.update(overrides)
    return Device(**values)


def test_devices_refuse_unknown_states_bad_imeis_and_negative_api_levels(db, user):
    qr = qr_row()
    db.session.add(qr)
    db.session.flush()
    assert not refused(db, _device(qr, user))
    assert refused(db, _device(qr, user, state="lost"))
    assert refused(db, _device(qr, user, imei="12345"))
    assert refused(db, _device(qr, user, android_api_level=-1))
    assert refused(db, _device(qr, user, serial_number=""))
    assert refused(db, _device(qr, user, qr_code_id=999_999))  # foreign key


def test_pending_enrollment_is_used_exactly_when_it_has_a_device(db, user):
    qr = qr_row(option="auto", user_id=user.id, usage_count=1, otp_enc="e", otp_hash="h")
    db.session.add(qr)
    db.session.flush()
    device = _device(qr, user)
    db.session.add(device)
    db.session.flush()
    assert refused(db, PendingEnrollment(qr_code_id=qr.id, state="used"))
    assert refused(db, PendingEnrollment(qr_code_id=qr.id, state="pending", device_id=device.id))
    assert refused(db, PendingEnrollment(qr_code_id=qr.id, state="gone"))
    assert not refused(db, PendingEnrollment(qr_code_id=qr.id, state="used", device_id=device.id))


def test_zero_touch_entries_are_unique_and_typed(db):
    assert refused(db, ZeroTouchEntry(identifier="R58N1", kind="serial"),
                   ZeroTouchEntry(identifier="R58N1", kind="serial"))
    assert refused(db, ZeroTouchEntry(identifier="R58N2", kind="mac"))


def test_outbox_messages_have_known_states_and_kinds(db):
    ok = dict(kind="notification", recipient="a@example.com", subject="s")
    assert not refused(db, OutboxMessage(**ok))
    assert refused(db, OutboxMessage(**{**ok, "status": "lost"}))
    assert refused(db, OutboxMessage(**{**ok, "kind": "spam"}))
    assert refused(db, OutboxMessage(**{**ok, "attempts": -1}))
