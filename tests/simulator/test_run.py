"""The Companion simulator end to end: a QR made by the console's code path, rendered to PNG,
decoded, checked, redeemed over real HTTP and completed."""
import json

import pytest
import sqlalchemy as sa

from portal.accounts.users import add_local_user
from portal.android.qr import render_png
from portal.database import db
from portal.enrollment.models import Device
from portal.enrollment.pending import revoke_qr_code
from portal.licensing.seats import figures, set_total
from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
from portal.settings.companion import seed_example_companion
from tests.support.live import live_app, serving


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    app = live_app(tmp_path_factory.mktemp("sim"), "sim")
    with app.app_context():
        seed_example_companion()
        set_total(10)
        add_local_user("alice", "alice@example.com", "alice-password", display_name="Alice")
    with serving(app) as url:
        app.url = url
        yield app


def make_png(portal, tmp_path, **request) -> tuple[str, str]:
    with portal.app_context():
        qr = create_qr_code(QrCodeRequest(**request), created_by=None, server_url=portal.url)
        path = tmp_path / f"{qr.public_id}.png"
        path.write_bytes(render_png(qr.payload_text()))
        return str(path), qr.public_id


def run_json(portal, *args) -> tuple[int, dict]:
    result = portal.test_cli_runner().invoke(args=["companion-sim", *args, "--json"])
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def test_automatic_qr_png_enrolls_and_completes(portal, tmp_path):
    png, qr_id = make_png(portal, tmp_path, option="auto", lang="de-CH", network="wifi",
                          wifi_ssid="Corp", wifi_security="WPA", wifi_password="password123",
                          username="alice", usage_count=2)
    code, report = run_json(portal, png, "--serial", "R58N100", "--imei", "356938035643809")
    assert code == 0, report
    assert report["ok"] and report["state"] == "enrolled" and report["qr_id"] == qr_id
    assert report["option"] == "auto" and report["user"]["username"] == "alice"
    assert "Connect to Wi-Fi 'Corp' (WPA)" in report["steps"]
    with portal.app_context():
        device = db.session.scalar(sa.select(Device).where(Device.public_id == report["device_id"]))
        assert (device.state, device.serial_number, device.imei) == ("enrolled", "R58N100",
                                                                    "356938035643809")
        assert figures().used == 1


def test_self_service_qr_signs_in_through_the_portal_pages(portal, tmp_path):
    png, _ = make_png(portal, tmp_path, option="ssp", lang="it", network="mobile")
    code, report = run_json(portal, png, "--serial", "R58N200", "--username", "alice",
                            "--password", "alice-password")
    assert code == 0, report
    assert report["state"] == "enrolled" and report["option"] == "ssp"
    assert any("Signed in to the Self Service Portal" in step for step in report["steps"])


def test_failure_report_releases_the_pending_enrollment(portal, tmp_path):
    png, _ = make_png(portal, tmp_path, option="auto", lang="en", network="mobile",
                      username="alice", usage_count=1)
    code, report = run_json(portal, png, "--serial", "R58N300", "--fail")
    assert code == 1 and report["state"] == "failed" and report["code"] == "provisioning_failed"
    again, report = run_json(portal, png, "--serial", "R58N301")
    assert again == 0 and report["state"] == "enrolled"  # the released enrollment was reusable


@pytest.mark.parametrize("args,code", [
    (["--api-level", "23"], "unsupported_android_version"),
    (["--username", "alice", "--password", "wrong-password"], "sign_in_failed"),
    ([], "credentials_needed"),
])
def test_refusals_exit_non_zero_with_the_error_code(portal, tmp_path, args, code):
    png, _ = make_png(portal, tmp_path, option="ssp", lang="en", network="mobile")
    if code == "unsupported_android_version":
        args = args + ["--username", "alice", "--password", "alice-password"]
    exit_code, report = run_json(portal, png, "--serial", "R58N400", *args)
    assert exit_code == 1 and report["code"] == code and not report["ok"]


def test_revoked_qr_is_refused(portal, tmp_path):
    png, qr_id = make_png(portal, tmp_path, option="auto", lang="en", network="mobile",
                          username="alice", usage_count=1)
    with portal.app_context():
        from portal.enrollment.models import QrCode
        revoke_qr_code(db.session.scalar(sa.select(QrCode).where(QrCode.public_id == qr_id)),
                       revoked_by=None)
    exit_code, report = run_json(portal, png, "--serial", "R58N500")
    assert exit_code == 1 and report["code"] == "qr_revoked"


def test_a_payload_android_would_misread_is_refused_before_any_request(portal, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(json.dumps({
        "android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME": "com.example/.R",
        "android.app.extra.PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION": "http://x/a.apk",
        "android.app.extra.PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM": "abc+/",
        "android.app.extra.PROVISIONING_WIFI_SSID": "Corp",
        "android.app.extra.PROVISIONING_WIFI_SECURITY_TYPE": "WPA2",
        "android.app.extra.PROVISIONING_WIFI_HIDDEN": "true",
        "android.app.extra.PROVISIONING_LOCALE": "de-CH",
        "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE": {"option": "auto", "qr_id": 5}}))
    exit_code, report = run_json(portal, str(bad))
    problems = "\n".join(report["problems"])
    assert exit_code == 1 and report["code"] == "invalid_payload"
    for fragment in ("DOWNLOAD_LOCATION", "SIGNATURE_CHECKSUM", "WIFI_HIDDEN must be a JSON "
                     "boolean", "Wi-Fi security_type", "LOCALE", "'qr_id' must be a string",
                     "'otp' is missing"):
        assert fragment in problems, fragment


def test_text_output_ends_with_the_device_and_its_state(portal, tmp_path):
    png, _ = make_png(portal, tmp_path, option="auto", lang="en", network="mobile",
                      username="alice", usage_count=1)
    result = portal.test_cli_runner().invoke(args=["companion-sim", png, "--serial", "R58N600"])
    assert result.exit_code == 0
    assert "Use mobile data" in result.output and "is enrolled." in result.output
