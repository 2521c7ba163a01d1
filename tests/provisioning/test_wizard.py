"""WizardState: the wizard's choices in one object, the fields they show, the request they make."""
import re
from pathlib import Path

import pytest

from portal.provisioning.qr_codes import UNLIMITED
from portal.provisioning.wizard import CONDITIONS, SHOWN_WHEN, WizardState, to_request
from portal.vocabulary import EnrollmentOption, NetworkType, SecurityType, UserType

CSS = Path(__file__).resolve().parents[2] / "static" / "css" / "portal.css"

EVERYTHING = {"option": "auto", "user_type": "local", "username": "alice", "ldap_user": "tok",
              "lang": "en", "usage_count": 3, "network": "wifi", "wifi_ssid": "Corp",
              "wifi_security": "WPA", "wifi_password": "secret-pass", "wifi_hidden": True,
              "send_to_user": True, "send_alternative": True, "alternative_email": "it@x.org",
              "define_otp": True, "otp_unlimited": False, "otp_validity": 5}


def test_a_fresh_form_is_self_service_wifi_wpa():
    state = WizardState.from_values({})
    assert (state.option, state.user_type, state.network, state.wifi_security) == (
        EnrollmentOption.SSP, UserType.LOCAL, NetworkType.WIFI, SecurityType.WPA)
    assert state.ssp and state.wifi and state.needs_password and not state.auto


def test_unknown_values_fall_back_to_the_defaults():
    state = WizardState.from_values({"option": "bogus", "network": None, "wifi_security": "X"})
    assert state == WizardState()


@pytest.mark.parametrize("values,shown,hidden", [
    ({"option": "ssp"}, {"wifi_ssid", "wifi_password"},
     {"user_type", "username", "usage_count", "send_to_user", "define_otp", "otp_validity"}),
    ({"option": "auto", "user_type": "ldap"}, {"ldap_bind", "ldap_password", "ldap_user"},
     {"username"}),
    ({"option": "auto", "network": "mobile"}, {"usage_count"},
     {"wifi_ssid", "wifi_security", "wifi_password", "wifi_hidden"}),
    ({"wifi_security": "NONE"}, {"wifi_ssid", "wifi_hidden"}, {"wifi_password"}),
    ({"option": "auto", "define_otp": True}, {"otp_unlimited", "otp_validity"}, set()),
    ({"option": "auto", "define_otp": True, "otp_unlimited": True}, {"otp_unlimited"},
     {"otp_validity"}),
    ({"option": "ssp", "define_otp": True}, set(), {"otp_unlimited", "otp_validity"}),
    ({"send_alternative": True}, {"alternative_email"}, set()),
])
def test_which_fields_apply(values, shown, hidden):
    state = WizardState.from_values(values)
    assert {name for name in shown if state.applies(name)} == shown
    assert {name for name in hidden if state.applies(name)} == set()
    assert state.applies("lang") and state.applies("option")  # not listed: always


def test_the_request_reads_only_the_fields_that_apply():
    request = to_request(dict(EVERYTHING, option="ssp", network="mobile",
                              send_alternative=False))
    assert (request.option, request.network, request.wifi_ssid, request.wifi_security,
            request.wifi_password, request.wifi_hidden, request.username, request.ldap_user,
            request.usage_count, request.send_to_user, request.alternative_email,
            request.otp_validity) == ("ssp", "mobile", None, None, None, False, None, None,
                                      None, False, None, None)


def test_the_request_of_an_automatic_wifi_qr_with_every_option():
    request = to_request(EVERYTHING)
    assert (request.username, request.ldap_user, request.usage_count, request.wifi_ssid,
            request.wifi_security, request.wifi_password, request.wifi_hidden,
            request.send_to_user, request.alternative_email, request.otp_validity) == (
        "alice", None, 3, "Corp", "WPA", "secret-pass", True, True, "it@x.org", 5)
    assert to_request(dict(EVERYTHING, otp_unlimited=True)).otp_validity == UNLIMITED
    assert to_request(dict(EVERYTHING, define_otp=False)).otp_validity is None
    assert to_request(dict(EVERYTHING, user_type="ldap")).ldap_user == "tok"
    assert to_request(dict(EVERYTHING, user_type="ldap")).username is None
    assert to_request(dict(EVERYTHING, wifi_security="NONE")).wifi_password is None


def test_every_condition_is_a_property_and_has_exactly_one_css_rule():
    css = CSS.read_text()
    used = {condition for conditions in SHOWN_WHEN.values() for condition in conditions}
    assert used <= set(CONDITIONS)
    state = WizardState()
    for condition in CONDITIONS:
        assert isinstance(getattr(state, condition), bool), condition
        assert len(re.findall(rf"\[data-when~={condition}\]", css)) == 1, condition


def test_saved_profile_hides_every_wifi_field_and_sends_only_the_profiles_id():
    state = WizardState.from_values({"network": "profile", "wifi_security": "EAP",
                                     "proxy": "manual"})
    assert state.profile and not state.wifi and not state.mobile
    assert state.applies("network_profile")
    assert not any(state.applies(name) for name in SHOWN_WHEN if name.startswith(
        ("wifi_", "proxy", "pac")))
    assert not WizardState.from_values({"network": "wifi"}).applies("network_profile")

    request = to_request(dict(EVERYTHING, network="profile", network_profile="7"))

    assert (request.network_profile_id, request.wifi_ssid, request.wifi_password,
            request.wifi_security, request.proxy_host) == (7, None, None, None, None)


@pytest.mark.parametrize("chosen", [None, "", "abc", "-1", "9" * 40])
def test_a_saved_profile_choice_without_a_usable_id_asks_for_one(chosen):
    request = to_request(dict(EVERYTHING, network="profile", network_profile=chosen))
    assert request.network_profile_id == 0  # no profile has it: the domain says choose one
