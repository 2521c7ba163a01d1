"""companion-sim's Android checks for the provisioning options: each key as ManagedProvisioning
reads it (typed getters, java.util.Base64, a PKCS#12 with an empty password)."""
import base64
import dataclasses
import json

import pytest

from portal.android.certificates import ca_certificate_value, user_certificate_value
from portal.android.payload import build_payload, encode_payload
from portal.android.wifi import EapSettings
from portal.simulator.checks import check_payload, describe
from tests.android.test_payload import AUTO_WIFI
from tests.support import eap_certs

W = "android.app.extra.PROVISIONING_WIFI_"
CA = ca_certificate_value(eap_certs.ca_pem())
CLIENT = user_certificate_value(eap_certs.client_pem())
SSP_TLS = dataclasses.replace(
    AUTO_WIFI, option="ssp", user=None, otp=None, wifi_security_type="EAP", wifi_password=None,
    time_zone="Europe/Zurich", proxy_host="proxy.corp.example", proxy_port=3128,
    wifi_eap=EapSettings(method="TLS", identity="dev1",
                         user_certificate=CLIENT))


def payload(**changes) -> dict:
    built = build_payload(SSP_TLS)
    built.update({W + key if not key.startswith("android") else key: value
                  for key, value in changes.items()})
    return {key: value for key, value in built.items() if value is not None}


def problems(built: dict, api_level=None) -> list[str]:
    return check_payload(encode_payload(built), api_level)[1]


def test_the_portals_tls_payload_passes_and_is_described():
    built = payload()
    assert problems(built, api_level=29) == []
    steps = describe(built)
    assert "Connect to Wi-Fi 'Corp-Guest-5G' (EAP TLS as 'dev1')" in steps
    assert "Use the proxy proxy.corp.example:3128" in steps
    assert "Set the time zone to Europe/Zurich" in steps


@pytest.mark.parametrize("changes,fragment", [
    ({"PROXY_PORT": "3128"}, "WIFI_PROXY_PORT must be a JSON integer"),
    ({"PROXY_PORT": 0}, "1 to 65,535"),
    ({"EAP_METHOD": "LEAP"}, "knows no such method"),
    ({"PHASE2_AUTH": "CHAP"}, "unknown to Android"),
    ({"IDENTITY": None}, "WIFI_IDENTITY is missing"),
    ({"USER_CERTIFICATE": None}, "EAP-TLS signs in with it"),
    ({"CA_CERTIFICATE": CA[:64] + "\n" + CA[64:]}, "one line of standard base64"),
    ({"CA_CERTIFICATE": CA.replace("+", "-").replace("/", "_")
      if ("+" in CA or "/" in CA) else CA[:-4] + "----"}, "standard base64"),
    ({"USER_CERTIFICATE": base64.b64encode(eap_certs.client_p12(b"pw")).decode()},
     "empty password"),
    ({"android.app.extra.PROVISIONING_TIME_ZONE": "Europe/Zurch"}, "TIME_ZONE"),
    ({"android.app.extra.PROVISIONING_TIME_ZONE": 1}, "TIME_ZONE must be a JSON string"),
])
def test_values_android_cannot_use_are_reported(changes, fragment):
    found = problems(payload(**changes))
    assert any(fragment in problem for problem in found), found


def test_eap_on_a_device_before_android_10_is_reported():
    assert any("API 29" in problem for problem in problems(payload(), api_level=28))


def test_eap_keys_under_another_security_type_are_reported_as_ignored():
    built = payload(SECURITY_TYPE="WPA", PASSWORD="correct-horse")
    assert any("ignored" in problem for problem in problems(built))
    assert json.dumps(built)
