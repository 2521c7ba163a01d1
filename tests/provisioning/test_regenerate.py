"""Stale QR codes (made with an older Companion) and Regenerate: same settings, user, waiting
pending enrollments and expiry; the old one revoked in the same transaction; licenses moved,
never reserved twice (issue 15, point 2)."""
import base64
import hashlib
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal import otp as otps
from portal import vault
from portal.audit.models import AuditEvent
from portal.database import db as database
from portal.database import utcnow
from portal.enrollment.errors import QrRevoked
from portal.enrollment.models import PendingEnrollment, QrCode
from portal.enrollment.redeem import DeviceInfo, redeem
from portal.licensing.seats import figures
from portal.mail.models import OutboxMessage
from portal.provisioning import listing
from portal.provisioning.pending_actions import delete_pending
from portal.provisioning.regenerate import TAKEN, RegenerateError, regenerate_qr_code
from portal.settings import companion

P = "android.app.extra."
EXTRAS = P + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"
NEW_COMPONENT = "com.example.companion2/.AdminReceiver"


def checksum_of(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def change_companion(component=None, checksum=None, download_url=None):
    """Save the Companion settings with some values changed, as Admin → Companion does."""
    now = companion.current()
    companion.save_companion(component or now.component_name,
                             download_url or now.download_url,
                             checksum or now.signature_checksum, True, "companion",
                             actor="test")


def payload(qr) -> dict:
    return json.loads(qr.payload_text())


def pending_of(qr, state="pending"):
    return list(database.session.scalars(sa.select(PendingEnrollment).where(
        PendingEnrollment.qr_code_id == qr.id, PendingEnrollment.state == state)))


def count(model, *where):
    return database.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def stale_of(qr) -> str | None:
    row = listing.qr_code_rows(list(database.session.execute(
        listing.qr_code_keys().where(QrCode.id == qr.id))))[0]
    return row[8]


@pytest.fixture
def admin(make_admin):
    return make_admin(username="regenerator")


def test_a_qr_code_records_the_companion_its_payload_names(make_qr_code):
    qr = make_qr_code("auto")
    body = payload(qr)
    assert qr.companion_component == body[P + "PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME"]
    assert qr.companion_checksum == body[P + "PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM"]


@pytest.mark.parametrize("change, expected", [
    ({"checksum": checksum_of("new signing key")}, "checksum"),
    ({"component": NEW_COMPONENT}, "component"),
    ({"component": NEW_COMPONENT, "checksum": checksum_of("new key")}, "component and checksum"),
])
def test_a_changed_checksum_or_component_marks_active_qr_codes_stale(make_qr_code, change,
                                                                     expected):
    auto, ssp = make_qr_code("auto"), make_qr_code("ssp")
    assert stale_of(auto) is None and stale_of(ssp) is None
    change_companion(**change)
    assert stale_of(auto) == expected and stale_of(ssp) == expected
    assert make_qr_code("auto").companion_checksum == companion.current().signature_checksum


def test_a_new_download_url_alone_makes_nothing_stale(make_qr_code):
    qr = make_qr_code("auto")
    change_companion(download_url="https://downloads.example.com/companion/v2.apk")
    assert stale_of(qr) is None


def test_revoked_and_exhausted_qr_codes_are_not_marked_stale_and_the_filter_finds_the_rest(
        make_qr_code, admin):
    active, revoked, exhausted = (make_qr_code("auto") for _ in range(3))
    regenerate_qr_code(revoked, regenerated_by=admin, server_url="https://portal.test")
    for pending in pending_of(exhausted):
        delete_pending(exhausted, pending.id, deleted_by=admin)
    change_companion(checksum=checksum_of("rotated"))
    assert stale_of(revoked) is None and stale_of(exhausted) is None
    assert stale_of(active) == "checksum"
    stale_ids = {row.id for row in database.session.execute(listing.qr_code_keys(state="stale"))}
    assert active.id in stale_ids and not stale_ids & {revoked.id, exhausted.id}
    assert listing.filters_from({"state": "stale"})["state"] == "stale"


def test_a_qr_code_of_unknown_companion_is_never_marked_stale(make_qr_code):
    qr = make_qr_code("auto")
    qr.companion_component = qr.companion_checksum = None
    database.session.commit()
    change_companion(checksum=checksum_of("rotated"))
    assert stale_of(qr) is None


def test_regenerate_keeps_settings_user_waiting_usage_and_expiry_and_moves_the_licenses(
        make_qr_code, make_user, admin):
    user = make_user("bob")
    old = make_qr_code("auto", licenses=10, usage_count=3, user=user, name="Library tablets",
                       lang="de-CH", wifi_hidden=True, alternative_email="it@example.com",
                       otp_validity=48)
    delete_pending(old, pending_of(old)[0].id, deleted_by=admin)   # 2 still waiting
    expiry, old_otp = old.otp_expires_at, payload(old)[EXTRAS]["otp"]
    change_companion(component=NEW_COMPONENT, checksum=checksum_of("new signing key"))
    before = figures()
    new = regenerate_qr_code(old, regenerated_by=admin, server_url="https://portal.test")

    assert old.is_revoked and not new.is_revoked and new.public_id != old.public_id
    assert (new.user_id, new.name, new.lang, new.network, new.wifi_ssid, new.wifi_security,
            new.wifi_hidden, new.alternative_email, new.otp_expires_at) == (
        user.id, "Library tablets", "de-CH", "wifi", "Corp-WLAN", "WPA", True,
        "it@example.com", expiry)
    assert vault.decrypt(new.wifi_password_enc) == "correct-horse"
    assert new.usage_count == 2 and new.created_by_id == admin.id
    assert [p.expires_at for p in pending_of(new)] == [expiry, expiry]
    assert len(pending_of(old, "revoked")) == 3 and pending_of(old) == []
    assert figures() == before  # reserved 2 before and after: moved, not reserved twice

    body, old_body = payload(new), payload(old)
    assert body[P + "PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME"] == NEW_COMPONENT
    assert body[P + "PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM"] == checksum_of(
        "new signing key")
    extras = body[EXTRAS]
    assert extras["qr_id"] == new.public_id and extras["user"] == "bob"
    assert vault.decrypt(new.otp_enc) == extras["otp"] != old_otp
    assert otps.keyed_hash(extras["otp"]) == new.otp_hash
    same = {key: value for key, value in old_body.items() if "DEVICE_ADMIN" not in key
            and key != EXTRAS}
    assert {key: body[key] for key in same} == same   # network, locale, hidden, …
    assert (new.companion_component, stale_of(new)) == (NEW_COMPONENT, None)
    assert count(OutboxMessage, OutboxMessage.qr_code_id == new.id) == 0  # mail: off


def test_the_new_qr_code_enrolls_and_the_old_one_is_refused(make_qr_code, admin):
    old = make_qr_code("auto", usage_count=2)
    old_otp = payload(old)[EXTRAS]["otp"]
    change_companion(checksum=checksum_of("rotated"))
    new = regenerate_qr_code(old, regenerated_by=admin, server_url="https://portal.test")
    device = DeviceInfo(serial_number="R58N0REGEN", manufacturer="samsung", model="SM-X200",
                        android_api_level=33)
    with pytest.raises(QrRevoked):
        redeem(old.public_id, otp=old_otp, ticket=None, device=device, client_address="192.0.2.9")
    redeem(new.public_id, otp=payload(new)[EXTRAS]["otp"], ticket=None, device=device,
           client_address="192.0.2.9")
    assert figures().used == 1 and figures().reserved == 1


def test_regenerate_is_audited_on_both_qr_codes_without_secrets(make_qr_code, admin):
    old = make_qr_code("auto")
    new = regenerate_qr_code(old, regenerated_by=admin, server_url="https://portal.test")
    events = {event.action: event for event in database.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.target.in_([old.public_id, new.public_id]),
                                    AuditEvent.action != "qr_code.create"))}
    assert events["qr_code.regenerate"].target == new.public_id
    assert events["qr_code.regenerate"].details["replaces"] == old.public_id
    assert events["qr_code.regenerate"].details["licenses_moved"] == 1
    assert events["qr_code.revoke"].target == old.public_id
    assert events["qr_code.revoke"].details["regenerated_as"] == new.public_id
    text = json.dumps([event.details for event in events.values()])
    assert payload(new)[EXTRAS]["otp"] not in text and "correct-horse" not in text


def test_mail_is_queued_again_only_when_asked(make_qr_code, make_admin, admin):
    make_admin(mail_recipient=True)
    old = make_qr_code("auto", send_to_user=True)
    new = regenerate_qr_code(old, regenerated_by=admin, server_url="https://portal.test",
                             mail=True)
    recipients = set(database.session.scalars(sa.select(OutboxMessage.kind).where(
        OutboxMessage.qr_code_id == new.id)))
    assert recipients == {"qr_to_admin", "qr_to_user"}


def test_a_self_service_portal_qr_code_regenerates_without_pending_enrollments(make_qr_code,
                                                                              admin):
    old = make_qr_code("ssp", network="mobile", wifi_ssid=None, wifi_security=None,
                       wifi_password=None)
    change_companion(checksum=checksum_of("rotated"))
    reserved = figures().reserved
    new = regenerate_qr_code(old, regenerated_by=admin, server_url="https://portal.test")
    assert old.is_revoked and new.option == "ssp" and new.usage_count is None
    assert new.otp_enc is None and count(PendingEnrollment) == 0
    assert payload(new)[P + "PROVISIONING_USE_MOBILE_DATA"] is True
    assert "otp" not in payload(new)[EXTRAS] and figures().reserved == reserved


def test_the_second_regenerate_gets_a_clear_message_and_changes_nothing(make_qr_code, admin):
    old = make_qr_code("auto", usage_count=2)
    regenerate_qr_code(old, regenerated_by=admin, server_url="https://portal.test")
    before = count(QrCode), count(PendingEnrollment), figures()
    with pytest.raises(RegenerateError) as error:
        regenerate_qr_code(old, regenerated_by=admin, server_url="https://portal.test")
    assert error.value.message == TAKEN
    assert (count(QrCode), count(PendingEnrollment), figures()) == before


def test_an_automatic_qr_code_with_nothing_waiting_is_refused_and_stays_as_it_was(
        make_qr_code, admin):
    qr = make_qr_code("auto", usage_count=1)
    database.session.execute(sa.update(PendingEnrollment)
                             .where(PendingEnrollment.qr_code_id == qr.id)
                             .values(expires_at=utcnow() - timedelta(minutes=1)))
    database.session.commit()
    with pytest.raises(RegenerateError) as error:
        regenerate_qr_code(qr, regenerated_by=admin, server_url="https://portal.test")
    assert "No pending enrollment of this QR code is waiting" in error.value.message
    database.session.refresh(qr)
    assert not qr.is_revoked and count(QrCode) == 1 and figures().reserved == 0


def test_a_payload_that_would_not_fit_with_the_new_companion_is_refused(make_qr_code, admin):
    qr = make_qr_code("auto")
    change_companion(download_url="https://downloads.example.com/" + "a" * 1900 + ".apk")
    with pytest.raises(RegenerateError) as error:
        regenerate_qr_code(qr, regenerated_by=admin, server_url="https://portal.test")
    assert "2331 bytes" in error.value.message
    database.session.refresh(qr)
    assert not qr.is_revoked and count(QrCode) == 1


@pytest.mark.parametrize("few", [500, 1])
def test_the_stale_filter_finds_the_same_rows_whether_few_or_many_are_stale(
        make_qr_code, admin, monkeypatch, few):
    """Few stale QR codes: read by id from ix_qr_codes_companion; more than FEW: the
    condition itself, scanned in list order."""
    monkeypatch.setattr(listing.search, "FEW", few)
    stale = [make_qr_code("auto"), make_qr_code("ssp")]
    revoked = make_qr_code("ssp")
    regenerate_qr_code(revoked, regenerated_by=admin, server_url="https://portal.test")
    change_companion(checksum=checksum_of("rotated"))
    fresh = make_qr_code("auto")
    found = {row.id for row in database.session.execute(listing.qr_code_keys(state="stale"))}
    regenerated = database.session.scalar(sa.select(QrCode.id).where(
        QrCode.id.not_in([qr.id for qr in (*stale, revoked, fresh)])))
    assert found == {qr.id for qr in stale} | {regenerated}
