"""The download URL answers over https with an APK whose checksum and receiver match the
settings: real signed APKs (tests/support/apks.py) served by a local https server."""
import pytest

from portal import preflight
from portal.preflight import Status
from portal.settings.companion import save_companion
from tests.support.apks import COMPONENT, apks  # noqa: F401  (the session fixture)

PATH = "/companion/companion.apk"


@pytest.fixture
def serve(app, test_ca, https_files):
    """Put `apk` at the download URL the settings name, with these settings; run the check."""
    app.config["TRUSTED_CA_FILE"] = test_ca[0]

    def check(apk: bytes, checksum: str, component: str = COMPONENT):
        https_files.routes[PATH] = (200, apk)
        save_companion(component, https_files.url + PATH, checksum, True, "companion",
                       actor="setup")
        return preflight.check_companion_apk(preflight.gather())
    return check


@pytest.mark.parametrize("name", ["v1", "v2v3"])
def test_the_right_apk_passes(db, serve, apks, name):
    check = serve(getattr(apks, name).read_bytes(), apks.key_a.checksum)
    assert check.status == Status.PASS, check
    assert check.found == ("com.example.companion 4.2.0 (42): its checksum and receiver match "
                           "the settings.")


def test_a_rotated_apk_passes_with_the_checksum_android_expects(db, serve, apks):
    from portal.android.apk import read_apk
    expected = read_apk(apks.rotated.read_bytes()).signature_checksum
    assert serve(apks.rotated.read_bytes(), expected).status == Status.PASS


def test_an_apk_signed_by_another_key_fails_showing_both_checksums(db, serve, apks):
    check = serve(apks.other_key.read_bytes(), apks.key_a.checksum)
    assert check.status == Status.FAILURE
    assert apks.key_b.checksum in check.found and apks.key_a.checksum in check.found
    assert "Admin → Companion" in check.fix


def test_a_receiver_other_than_the_settings_fails(db, serve, apks):
    check = serve(apks.v2v3.read_bytes(), apks.key_a.checksum,
                  component="com.example.companion/.OtherReceiver")
    assert check.status == Status.FAILURE
    assert "device-admin receiver is com.example.companion/.AdminReceiver" in check.found


def test_the_long_form_of_the_same_receiver_matches(db, serve, apks):
    check = serve(apks.v2v3.read_bytes(), apks.key_a.checksum,
                  component="com.example.companion/com.example.companion.AdminReceiver")
    assert check.status == Status.PASS, check


def test_an_apk_without_a_device_admin_receiver_fails(db, serve, apks):
    check = serve(apks.no_admin.read_bytes(), apks.key_a.checksum)
    assert check.status == Status.FAILURE and "BIND_DEVICE_ADMIN" in check.found


def test_a_download_that_is_not_an_apk_fails(db, serve, apks):
    check = serve(apks.not_apk.read_bytes(), apks.key_a.checksum)
    assert check.status == Status.FAILURE and "not a Companion APK" in check.found
