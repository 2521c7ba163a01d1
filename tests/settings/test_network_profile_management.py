"""A network profile's Management (issue 17): Companion by default or Android Device Policy,
saved and versioned like its network, on Admin → Network profiles, and applied to a QR code made
from the profile (its enrollment token made at the loopback stand-in of Google's API)."""
import html as html_lib
import re

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.provisioning.qr_codes import ProvisioningError, validate_request
from portal.settings import network_profiles
from portal.settings.network_profiles import NetworkProfileError, ProfileValues
from tests.conftest import csrf_token

LIST = "/admin/settings/network-profiles"
NEW = LIST + "/new"
TOKENS = r"/v1/enterprises/LC0abc/enrollmentTokens$"


def _wifi(name="School Wi-Fi", **overrides):
    values = dict(name=name, network="wifi", wifi_ssid="School", wifi_security="WPA",
                  wifi_password="long enough secret")
    values.update(overrides)
    return ProfileValues(**values)


def _text(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def test_companion_is_the_default_and_adp_is_saved_and_audited(db):
    plain = network_profiles.save(_wifi(), actor="alice")
    adp = network_profiles.save(_wifi("Kiosks", management="adp"), actor="alice")
    assert (plain.management, adp.management) == ("companion", "adp")
    assert network_profiles.request_values(adp)["management"] == "adp"
    assert network_profiles.management_label(adp) == "Android Device Policy"
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.target == "Kiosks"))
    assert event.details["management"] == "adp"


def test_changing_the_management_raises_the_version_and_nothing_else_does(db):
    profile = network_profiles.save(_wifi(), actor="alice")
    network_profiles.save(_wifi(), actor="bob", profile=profile)
    assert profile.version == 1
    network_profiles.save(_wifi(management="adp"), actor="bob", profile=profile)
    assert (profile.version, profile.management) == (2, "adp")
    network_profiles.save(_wifi(name="Renamed", management="adp"), actor="bob", profile=profile)
    assert profile.version == 2


@pytest.mark.parametrize("management", ["", "ADP", "intune"])
def test_an_unknown_management_is_refused(db, management):
    with pytest.raises(NetworkProfileError) as refused:
        network_profiles.save(_wifi(management=management), actor="alice")
    assert refused.value.errors == {"management": "Choose Companion or Android Device "
                                                  "Policy."}


def test_a_qr_code_from_an_adp_profile_is_android_device_policy(db, make_qr_code, make_user,
                                                               amapi_connected):
    profile = network_profiles.save(_wifi(management="adp"), actor="alice")
    qr_code = make_qr_code(network_profile_id=profile.id, usage_count=2)
    assert qr_code.management == "adp" and qr_code.enrollment_token_name in amapi_connected.tokens
    (call,) = amapi_connected.calls("POST", TOKENS)
    assert call.json["oneTimeOnly"] is False
    assert qr_code.companion_component is None and qr_code.network_profile_version == 1


def test_the_request_s_own_management_wins_over_the_profile_s(db, make_qr_code,
                                                             amapi_connected):
    profile = network_profiles.save(_wifi(management="adp"), actor="alice")
    qr_code = make_qr_code(network_profile_id=profile.id, management="companion",
                           management_given=True)
    assert qr_code.management == "companion" and amapi_connected.calls("POST", TOKENS) == []


def test_an_adp_profile_without_the_api_set_up_is_refused_on_the_management_field(
        db, make_qr_code, make_user):
    profile = network_profiles.save(_wifi(management="adp"), actor="alice")
    with pytest.raises(ProvisioningError) as refused:
        make_qr_code(network_profile_id=profile.id)
    assert set(refused.value.errors) == {"management"}
    assert "Android Management API" in refused.value.errors["management"]


def test_validation_sees_the_profile_s_management(db, make_user, amapi_connected):
    from portal.licensing.seats import set_total
    from portal.provisioning.qr_codes import QrCodeRequest
    from portal.settings.companion import seed_example_companion
    seed_example_companion()
    set_total(5)
    profile = network_profiles.save(_wifi(management="adp"), actor="alice")
    from portal.amapi.client import current
    current().policy_auto = None
    db.session.commit()
    errors = validate_request(QrCodeRequest(option="auto", lang="en", network="mobile",
                                            user=make_user(), usage_count=1,
                                            network_profile_id=profile.id),
                              server_url="https://portal.test")
    assert list(errors) == ["management"]


# Admin → Network profiles

def test_the_form_offers_management_and_the_list_shows_it(admin_client, db):
    page = _text(admin_client.get(NEW))
    assert 'name="management" type="radio" value="companion" checked' in page \
        or re.search(r'<input[^>]*checked[^>]*value="companion"|<input[^>]*value="companion"'
                     r'[^>]*checked', page)
    assert "Android Device Policy" in page
    response = admin_client.post(LIST, data={
        "csrf_token": csrf_token(admin_client, NEW), "name": "Kiosks", "network": "mobile",
        "management": "adp"})
    assert response.status_code == 303
    assert network_profiles.find("Kiosks").management == "adp"
    row = re.search(r'<tr id="network-profile-\d+">(.*?)</tr>',
                    _text(admin_client.get(LIST)), re.S).group(1)
    assert "<td>Android Device Policy</td>" in row
    edit = _text(admin_client.get(f"{LIST}/{network_profiles.find('Kiosks').id}"))
    assert re.search(r'<input[^>]*value="adp"[^>]*checked|<input[^>]*checked[^>]*value="adp"',
                     edit)


def test_a_bad_management_is_shown_beside_its_field(admin_client, db):
    response = admin_client.post(LIST, data={
        "csrf_token": csrf_token(admin_client, NEW), "name": "Kiosks", "network": "mobile",
        "management": "intune"})
    assert response.status_code == 422
    assert re.search(r'id="management-error">Choose Companion or Android Device Policy\.<',
                     _text(response))
    assert network_profiles.find("Kiosks") is None
