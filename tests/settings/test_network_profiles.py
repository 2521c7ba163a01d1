"""Network profiles (the domain): validated as the wizard validates Wi-Fi, the password
encrypted and kept when left empty, a version that goes up when the network changes, and QR
codes made from a profile carrying a frozen copy and the version they were made from."""
import pytest
import sqlalchemy as sa

from portal import vault
from portal.audit.models import AuditEvent
from portal.provisioning.qr_codes import ProvisioningError, validate_request
from portal.settings import network_profiles
from portal.settings.network_profiles import NetworkProfileError, ProfileValues


def _wifi(name="School Wi-Fi", **overrides):
    values = dict(name=name, network="wifi", wifi_ssid="School", wifi_security="WPA",
                  wifi_password="long enough secret")
    values.update(overrides)
    return ProfileValues(**values)


def test_a_profile_is_saved_with_its_password_encrypted_and_audited_without_it(db):
    profile = network_profiles.save(_wifi(), actor="alice")

    assert (profile.version, profile.wifi_ssid, profile.wifi_security) == (1, "School", "WPA")
    assert "long enough secret" not in profile.wifi_password_enc
    assert vault.decrypt(profile.wifi_password_enc) == "long enough secret"
    [event] = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "network_profile.create")).all()
    assert event.target == "School Wi-Fi" and "long enough secret" not in str(event.details)


@pytest.mark.parametrize("overrides, field", [
    ({"name": ""}, "name"),
    ({"name": "a\nb"}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"wifi_ssid": ""}, "wifi_ssid"),
    ({"wifi_ssid": "x" * 33}, "wifi_ssid"),
    ({"wifi_security": "WPA", "wifi_password": "short"}, "wifi_password"),
    ({"wifi_security": "WEP", "wifi_password": "abc"}, "wifi_password"),
    ({"wifi_security": "EAP"}, "wifi_security"),
    ({"wifi_security": "XYZ"}, "wifi_security"),
    ({"network": "lan"}, "network"),
])
def test_bad_values_are_refused_by_field_and_nothing_is_saved(db, overrides, field):
    with pytest.raises(NetworkProfileError) as refused:
        network_profiles.save(_wifi(**overrides), actor="alice")

    assert field in refused.value.errors
    assert network_profiles.all_profiles() == []


def test_names_are_unique_without_regard_to_case(db):
    network_profiles.save(_wifi("Staff"), actor="alice")

    with pytest.raises(NetworkProfileError) as refused:
        network_profiles.save(_wifi(" staff "), actor="alice")

    assert refused.value.errors == {"name": "A network profile named 'Staff' already exists."}
    assert network_profiles.find("STAFF").name == "Staff"


def test_an_empty_password_keeps_the_stored_one_and_the_version(db):
    profile = network_profiles.save(_wifi(), actor="alice")

    network_profiles.save(_wifi("Renamed", wifi_password=""), actor="bob", profile=profile)

    assert (profile.name, profile.version) == ("Renamed", 1)
    assert network_profiles.request_values(profile)["wifi_password"] == "long enough secret"


def test_changing_the_network_raises_the_version(db):
    profile = network_profiles.save(_wifi(), actor="alice")

    network_profiles.save(_wifi(wifi_password="another long secret"), actor="bob",
                          profile=profile)
    assert profile.version == 2
    network_profiles.save(_wifi(network="mobile", wifi_ssid=None, wifi_security=None,
                                wifi_password=None), actor="bob", profile=profile)

    assert (profile.version, profile.network, profile.wifi_ssid) == (3, "mobile", None)
    assert profile.wifi_password_enc is None


def test_open_wifi_stores_no_password(db):
    profile = network_profiles.save(_wifi(wifi_security="NONE", wifi_password=""),
                                    actor="alice")

    assert profile.wifi_password_enc is None


def test_a_qr_code_from_a_profile_copies_it_and_keeps_its_version(db, make_qr_code):
    profile = network_profiles.save(_wifi(), actor="alice")

    qr_code = make_qr_code(network="mobile", wifi_ssid=None, wifi_security=None,
                           wifi_password=None, network_profile_id=profile.id)
    network_profiles.save(_wifi(wifi_ssid="Elsewhere"), actor="bob", profile=profile)

    assert (qr_code.network, qr_code.wifi_ssid) == ("wifi", "School")
    assert (qr_code.network_profile_id, qr_code.network_profile_version) == (profile.id, 1)
    assert '"School"' in qr_code.payload_text() and "Elsewhere" not in qr_code.payload_text()
    assert profile.version == 2


@pytest.mark.parametrize("profile_id", [999, 2**40, "x"])
def test_an_unknown_profile_is_refused(db, make_qr_code, profile_id):
    with pytest.raises(ProvisioningError) as refused:
        make_qr_code(network_profile_id=profile_id)

    assert refused.value.errors["network_profile"] == "Choose one of the saved network profiles."


def test_a_deleted_profile_leaves_its_qr_codes_as_they_were(db, make_qr_code):
    profile = network_profiles.save(_wifi(), actor="alice")
    qr_code = make_qr_code(network_profile_id=profile.id)

    network_profiles.delete(profile, actor="alice")
    db.session.expire_all()

    assert qr_code.network_profile_id is None and qr_code.wifi_ssid == "School"


def test_validation_sees_the_profile_not_the_inline_fields(db, make_user):
    from portal.provisioning.qr_codes import QrCodeRequest
    from portal.settings.companion import seed_example_companion
    seed_example_companion()
    profile = network_profiles.save(_wifi(), actor="alice")

    request = QrCodeRequest(option="ssp", lang="en", network="wifi", wifi_ssid="",
                            network_profile_id=profile.id)

    assert validate_request(request, server_url="https://portal.test") == {}
