"""create_qr_code: one transaction for the QR, its pending enrollments, licenses and mail."""
import dataclasses
import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal import vault
from portal.accounts.models import PortalUser
from portal.android.qr import qr_version
from portal.audit.models import AuditEvent
from portal.enrollment.models import PendingEnrollment, QrCode
from portal.errors import DomainError
from portal.licensing.seats import figures
from portal.mail.models import OutboxMessage
from portal.otp import matches
from portal.provisioning.qr_codes import (ProvisioningError, QrCodeRequest, create_qr_code,
                                          validate_request, view_otp)

P = "android.app.extra."


def count(db, model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_automatic_qr_reserves_one_license_per_pending_enrollment(db, make_qr_code):
    qr = make_qr_code("auto", licenses=10, usage_count=4)
    assert count(db, PendingEnrollment, PendingEnrollment.qr_code_id == qr.id,
                 PendingEnrollment.state == "pending") == 4
    assert figures() == type(figures())(total=10, used=0, reserved=4)
    assert figures().remaining == 6


def test_self_service_qr_reserves_nothing_and_creates_no_pending_enrollment(db, make_qr_code):
    qr = make_qr_code("ssp", licenses=10)
    assert count(db, PendingEnrollment, PendingEnrollment.qr_code_id == qr.id) == 0
    assert figures().reserved == 0


def test_usage_count_above_the_remaining_licenses_is_refused_and_nothing_written(
        db, make_qr_code, make_user):
    make_qr_code("auto", licenses=5, usage_count=3)
    user = make_user()
    before = count(db, QrCode), count(db, PendingEnrollment), count(db, AuditEvent)
    with pytest.raises(ProvisioningError) as error:
        make_qr_code("auto", usage_count=3, user=user)
    assert "at most the 2 licenses that remain" in error.value.errors["usage_count"]
    assert (count(db, QrCode), count(db, PendingEnrollment), count(db, AuditEvent)) == before
    assert figures().reserved == 3


@pytest.mark.parametrize("usage_count,fragment", [
    (0, "1 or more"), (-1, "1 or more"), (None, "1 or more"), (True, "1 or more"),
])
def test_usage_count_must_be_a_whole_number_of_at_least_one(make_qr_code, usage_count,
                                                            fragment):
    with pytest.raises(ProvisioningError) as error:
        make_qr_code("auto", usage_count=usage_count)
    assert fragment in error.value.errors["usage_count"]


def test_no_licenses_left_says_so(make_qr_code):
    with pytest.raises(ProvisioningError) as error:
        make_qr_code("auto", licenses=0, usage_count=1)
    assert "No licenses remain" in error.value.errors["usage_count"]


def test_every_problem_is_reported_at_once_by_field(make_qr_code):
    with pytest.raises(ProvisioningError) as error:
        make_qr_code("auto", user=None, lang="xx-Nope", wifi_ssid="x" * 33, wifi_password="short",
                     alternative_email="not-an-address", usage_count=0)
    assert {"username", "lang", "wifi_ssid", "wifi_password", "alternative_email",
            "usage_count"} <= set(error.value.errors)
    assert set(error.value.errors) <= {field.name for field in dataclasses.fields(QrCodeRequest)}


def test_unknown_localization_is_refused(make_qr_code):
    with pytest.raises(ProvisioningError) as error:
        make_qr_code("ssp", lang="fr-CH")
    assert "Localizations" in error.value.errors["lang"]


def test_without_a_companion_the_error_is_about_the_companion_and_names_no_screen(db,
                                                                                  make_user):
    from portal.licensing.seats import set_total
    from portal.settings.models import CompanionSettings
    db.session.execute(sa.delete(CompanionSettings))
    set_total(5)
    with pytest.raises(ProvisioningError) as error:
        create_qr_code(QrCodeRequest(option="ssp", lang="en", network="mobile"),
                       created_by=None, server_url="https://portal.test")
    assert error.value.errors == {"companion": "The Companion is not configured yet."}
    assert isinstance(error.value, DomainError)  # one shape for every refusal


def test_a_picked_directory_user_is_recorded_even_when_the_qr_is_refused(db, make_qr_code):
    from portal.accounts.directory import pick_token
    from portal.directory.ldap import DirectoryUser
    token = pick_token(DirectoryUser(directory_id="guid-1", username="dora",
                                     display_name="Dora Dir", email="dora@example.org", dn="uid=dora"))
    with pytest.raises(ProvisioningError) as error:
        make_qr_code("auto", user=None, ldap_user=token, usage_count=0)
    assert set(error.value.errors) == {"usage_count"}
    dora = db.session.scalar(sa.select(PortalUser).where(PortalUser.username == "dora"))
    assert (dora.source, dora.directory_id) == ("ldap", "guid-1")
    qr = make_qr_code("auto", user=None, ldap_user=token, usage_count=1)
    assert qr.user_id == dora.id


def test_a_forged_directory_user_token_is_refused_on_its_field(db, make_qr_code):
    with pytest.raises(ProvisioningError) as error:
        make_qr_code("auto", user=None, ldap_user="forged.token")
    assert "Search the directory" in error.value.errors["ldap_user"]
    assert count(db, PortalUser) == 0


def test_validate_request_reports_without_writing(db, make_qr_code, make_user):
    from portal.accounts.directory import pick_token
    from portal.directory.ldap import DirectoryUser
    make_qr_code("ssp")  # a Companion and licenses
    token = pick_token(DirectoryUser(directory_id="guid-2", username="eve",
                                     display_name="Eve", email=None, dn="uid=eve"))
    request = QrCodeRequest(option="auto", lang="en", network="mobile", ldap_user=token,
                            usage_count=0, otp_validity=0)
    errors = validate_request(request, server_url="https://portal.test")
    assert set(errors) == {"usage_count", "otp_validity"}
    assert count(db, PortalUser) == 0 and not db.session.new


def test_payload_is_frozen_encrypted_and_decodes_to_the_settings(db, make_qr_code):
    qr = make_qr_code("auto", lang="de-CH", usage_count=2, wifi_hidden=True)
    stored = db.session.scalar(sa.select(QrCode.payload_enc).where(QrCode.id == qr.id))
    assert "correct-horse" not in stored and "Corp-WLAN" not in stored
    payload = json.loads(qr.payload_text())
    extras = payload[P + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"]
    assert payload[P + "PROVISIONING_LOCALE"] == "de_CH"
    assert payload[P + "PROVISIONING_WIFI_HIDDEN"] is True
    assert extras["qr_id"] == qr.public_id and extras["option"] == "auto"
    assert extras["server_url"] == "https://portal.test" and extras["lang"] == "de-CH"
    assert matches(extras["otp"], qr.otp_hash)
    assert qr.qr_version == qr_version(qr.payload_text())


def test_otp_is_stored_encrypted_and_as_a_keyed_hash_only(db, make_qr_code):
    qr = make_qr_code("auto")
    otp = json.loads(qr.payload_text())[P + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"]["otp"]
    row = db.session.execute(sa.select(QrCode.otp_enc, QrCode.otp_hash)
                             .where(QrCode.id == qr.id)).one()
    assert otp not in row.otp_enc and otp != row.otp_hash
    assert vault.decrypt(row.otp_enc) == otp
    assert len(otp) == 16 and re.fullmatch(r"[A-Za-z0-9_-]{16}", otp)  # 96 bits, whatever the policy


def test_otp_validity_follows_the_policy_unless_defined(db, make_qr_code):
    default = make_qr_code("auto")
    assert abs(default.otp_expires_at - (default.created_at + timedelta(hours=72))) < \
        timedelta(seconds=5)
    unlimited = make_qr_code("auto", otp_validity="unlimited")
    assert unlimited.otp_expires_at is None
    two_hours = make_qr_code("auto", otp_validity=2)
    assert two_hours.otp_expires_at - two_hours.created_at == timedelta(hours=2)
    pending = db.session.scalars(sa.select(PendingEnrollment.expires_at)
                                 .where(PendingEnrollment.qr_code_id == two_hours.id)).all()
    assert pending == [two_hours.otp_expires_at]


@pytest.mark.parametrize("validity", [0, 87601, "forever", 1.5])
def test_defined_otp_validity_out_of_range_is_refused(make_qr_code, validity):
    with pytest.raises(ProvisioningError) as error:
        make_qr_code("auto", otp_validity=validity)
    assert "87,600 hours" in error.value.errors["otp_validity"]


def test_view_otp_returns_the_otp_and_is_audited(db, make_qr_code, make_admin):
    admin = make_admin()
    qr = make_qr_code("auto")
    otp = view_otp(qr, viewed_by=admin)
    assert matches(otp, qr.otp_hash)
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "qr_code.view_otp"))
    assert event.actor == admin.username and event.target == qr.public_id
    assert otp not in json.dumps(event.details or {})


def test_creation_is_audited_without_secrets(db, make_qr_code):
    qr = make_qr_code("auto", wifi_password="super-secret-wifi")
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "qr_code.create"))
    assert event.target == qr.public_id and event.details["usage_count"] == 1
    assert "super-secret-wifi" not in json.dumps(event.details)


def test_mail_goes_to_recipients_user_and_alternative_address_for_automatic(
        db, make_qr_code, make_admin, make_user):
    make_admin("boss", email="boss@example.com", mail_recipient=True)
    make_admin("quiet", email="quiet@example.com")
    user = make_user("bob", email="bob@example.com")
    qr = make_qr_code("auto", user=user, send_to_user=True, alternative_email="it@example.com")
    rows = db.session.execute(sa.select(OutboxMessage.kind, OutboxMessage.recipient)
                              .where(OutboxMessage.qr_code_id == qr.id)).all()
    assert sorted(map(tuple, rows)) == [("notification", "it@example.com"),
                                        ("qr_to_admin", "boss@example.com"),
                                        ("qr_to_user", "bob@example.com")]


def test_self_service_mails_only_the_alternative_address(db, make_qr_code, make_admin):
    make_admin("boss", email="boss@example.com", mail_recipient=True)
    quiet = make_qr_code("ssp")
    noted = make_qr_code("ssp", alternative_email="it@example.com")
    recipients = lambda qr: db.session.scalars(sa.select(OutboxMessage.recipient).where(  # noqa
        OutboxMessage.qr_code_id == qr.id)).all()
    assert recipients(quiet) == []
    assert recipients(noted) == ["it@example.com"]


def test_mobile_data_qr_stores_no_wifi_settings(db, make_qr_code):
    qr = make_qr_code("ssp", network="mobile", wifi_ssid="ignored", wifi_security="WPA")
    assert (qr.wifi_ssid, qr.wifi_security, qr.wifi_password_enc) == (None, None, None)
    payload = json.loads(qr.payload_text())
    assert payload[P + "PROVISIONING_USE_MOBILE_DATA"] is True
    assert not [key for key in payload if "WIFI" in key]


def test_public_ids_are_url_safe_unguessable_and_unique(make_qr_code):
    ids = {make_qr_code("ssp").public_id for _ in range(20)}
    assert len(ids) == 20
    assert all(len(i) == 12 and set(i) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") for i in ids)
