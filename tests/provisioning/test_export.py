"""Export of a QR code's payload: which values are secrets and what the redacted file holds."""
import json

import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.provisioning.export import REDACTED, full_payload, redacted_payload, secret_names

P = "android.app.extra."


def test_a_self_service_qr_code_on_mobile_data_has_no_secret_to_redact(make_qr_code):
    qr = make_qr_code("ssp", network="mobile", wifi_ssid=None, wifi_security=None,
                      wifi_password=None)
    text, replaced = redacted_payload(qr)
    assert replaced == [] and secret_names(qr) == []
    assert json.loads(text) == json.loads(qr.payload_text())


def test_an_automatic_wifi_qr_code_redacts_the_password_and_the_otp_only(make_qr_code):
    qr = make_qr_code("auto")
    redacted, frozen = json.loads(redacted_payload(qr)[0]), json.loads(qr.payload_text())
    assert secret_names(qr) == ["the Wi-Fi password", "the OTP"]
    extras = P + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"
    frozen[P + "PROVISIONING_WIFI_PASSWORD"] = frozen[extras]["otp"] = REDACTED
    assert redacted == frozen


def test_the_full_payload_is_recorded_without_its_secrets(db, make_qr_code, make_admin):
    qr, admin = make_qr_code("auto"), make_admin()
    assert json.loads(full_payload(qr, exported_by=admin)) == json.loads(qr.payload_text())
    event = db.session.scalar(sa.select(AuditEvent).where(
        AuditEvent.action == "qr_code.export_payload"))
    assert (event.actor, event.target, event.details) == (admin.username, qr.public_id,
                                                          {"secrets": True})
