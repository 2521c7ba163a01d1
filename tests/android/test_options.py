"""Time zone, enterprise Wi-Fi (EAP) and proxy: each checked as Android checks it, and carried in
the payload under the keys and JSON types ManagedProvisioning reads (android-qr.md §2, §4)."""
import base64
import dataclasses
import json

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from portal.android.certificates import (CertificateError, ca_certificate_value,
                                         user_certificate_value)
from portal.android.options import proxy_errors, time_zone_error
from portal.android.payload import PREFIX, build_payload, validate_settings
from portal.android.wifi import EapSettings, validate_wifi
from tests.android.test_payload import AUTO_WIFI
from tests.support import eap_certs

W = PREFIX + "PROVISIONING_WIFI_"
CA = ca_certificate_value(eap_certs.ca_pem())
CLIENT = user_certificate_value(eap_certs.client_pem())
PEAP = EapSettings(method="PEAP", phase2="MSCHAPV2", identity="alice@corp.example")


def eap_network(eap, password="eap-secret", base=AUTO_WIFI):
    return dataclasses.replace(base, wifi_security_type="EAP", wifi_password=password,
                               wifi_eap=eap)


# A Self Service Portal QR carries no user and OTP: room for both TLS certificates.
SSP_WIFI = dataclasses.replace(AUTO_WIFI, option="ssp", user=None, otp=None)


# --- time zone ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Europe/Zurich", "America/New_York", "UTC", "", None])
def test_iana_time_zones_and_none_are_accepted(name):
    assert time_zone_error(name) is None


@pytest.mark.parametrize("name,fragment", [
    ("Europe/Zürich", "not an IANA time zone"), ("CET+1", "not an IANA time zone"),
    ("europe/zurich", 'written "Europe/Zurich"'), ("Mars/Olympus", "not an IANA time zone")])
def test_unknown_time_zones_are_refused(name, fragment):
    assert fragment in time_zone_error(name)


def test_time_zone_goes_into_the_payload_as_a_string():
    payload = build_payload(dataclasses.replace(AUTO_WIFI, time_zone="Europe/Zurich"))
    assert payload[PREFIX + "PROVISIONING_TIME_ZONE"] == "Europe/Zurich"
    assert PREFIX + "PROVISIONING_TIME_ZONE" not in build_payload(AUTO_WIFI)
    assert validate_settings(dataclasses.replace(AUTO_WIFI, time_zone="Nowhere/Town")) == {
        "time_zone": time_zone_error("Nowhere/Town")}


# --- proxy -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("host,port,bypass,pac", [
    ("proxy.corp.example", 3128, None, None), ("10.0.0.8", 8080, "localhost,*.corp.example", None),
    (None, None, None, "https://wpad.corp.example/proxy.pac"), (None, None, None, None)])
def test_proxies_android_accepts(host, port, bypass, pac):
    assert proxy_errors(host, port, bypass, pac) == {}


@pytest.mark.parametrize("host,port,bypass,pac,field,fragment", [
    ("proxy.corp.example", 0, None, None, "proxy_port", "1 to 65,535, not 0"),
    ("proxy.corp.example", 70000, None, None, "proxy_port", "1 to 65,535, not 70000"),
    ("proxy.corp.example", None, None, None, "proxy_port", "Enter the proxy port"),
    ("http://proxy.corp.example", 80, None, None, "proxy_host", "no scheme"),
    ("proxy_1.corp", 80, None, None, "proxy_host", "host name"),
    ("proxy.corp.example", 80, "localhost, *.corp", None, "proxy_bypass", "without spaces"),
    ("proxy.corp.example", 80, "a;b", None, "proxy_bypass", "commas"),
    (None, 8080, None, None, "proxy_port", "proxy host too"),
    (None, None, None, "ftp://wpad/proxy.pac", "pac_url", "http:// or https://"),
    ("proxy.corp.example", 80, None, "https://wpad/proxy.pac", "pac_url", "not both"),
])
def test_proxies_android_refuses_name_the_field(host, port, bypass, pac, field, fragment):
    errors = proxy_errors(host, port, bypass, pac)
    assert list(errors) == [field] and fragment in errors[field]


def test_static_proxy_port_is_a_json_integer_and_pac_url_a_string():
    static = build_payload(dataclasses.replace(
        AUTO_WIFI, proxy_host="proxy.corp.example", proxy_port=3128, proxy_bypass="*.corp"))
    assert (static[W + "PROXY_HOST"], static[W + "PROXY_PORT"], static[W + "PROXY_BYPASS"]) == (
        "proxy.corp.example", 3128, "*.corp")
    assert type(static[W + "PROXY_PORT"]) is int and W + "PAC_URL" not in static
    pac = build_payload(dataclasses.replace(AUTO_WIFI, pac_url="https://wpad.example/p.pac"))
    assert pac[W + "PAC_URL"] == "https://wpad.example/p.pac"
    assert not {W + "PROXY_HOST", W + "PROXY_PORT"} & set(pac)


# --- enterprise Wi-Fi ----------------------------------------------------------------------------

@pytest.mark.parametrize("eap,password", [
    (PEAP, "eap-secret"),
    (EapSettings(method="PEAP", identity="a", ca_certificate=CA, domain="radius.corp.example",
                 anonymous_identity="anonymous@corp.example"), "eap-secret"),
    (EapSettings(method="TTLS", phase2="PAP", identity="a"), "eap-secret"),
    (EapSettings(method="PWD", identity="a"), "eap-secret"),
    (EapSettings(method="TLS", identity="dev1", ca_certificate=CA, user_certificate=CLIENT), None),
])
def test_enterprise_networks_android_accepts(eap, password):
    assert validate_wifi("Corp-8021X", "EAP", password, eap) == {}


@pytest.mark.parametrize("eap,password,field,fragment", [
    (EapSettings(method="PEAP"), "x", "identity", "Identity is required"),
    (EapSettings(method="LEAP", identity="a"), "x", "eap_method", "PEAP, TTLS, TLS or PWD"),
    (EapSettings(method="TTLS", identity="a"), "x", "phase2", "PAP, MSCHAP, MSCHAPV2, GTC"),
    (EapSettings(method="PEAP", phase2="PAP", identity="a"), "x", "phase2", "not PAP"),
    (EapSettings(method="TLS", phase2="MSCHAPV2", identity="a", user_certificate=CLIENT), None,
     "phase2", "must be NONE"),
    (PEAP, None, "password", "Password is required for PEAP"),
    (EapSettings(method="TLS", identity="dev1"), None, "user_certificate", "client certificate"),
    (EapSettings(method="TLS", identity="dev1", user_certificate=CLIENT), "x", "password",
     "leave the password empty"),
    (dataclasses.replace(PEAP, user_certificate=CLIENT), "x", "user_certificate", "only TLS"),
    (dataclasses.replace(PEAP, ca_certificate=CA[:40] + "\n" + CA[40:]), "x", "ca_certificate",
     "one line of standard base64"),
    (dataclasses.replace(PEAP, ca_certificate=base64.b64encode(b"not a cert").decode()), "x",
     "ca_certificate", "X.509"),
    (dataclasses.replace(PEAP, domain="radius corp"), "x", "domain", "without spaces"),
])
def test_enterprise_networks_android_refuses_name_the_field(eap, password, field, fragment):
    errors = validate_wifi("Corp-8021X", "EAP", password, eap)
    assert field in errors and fragment in errors[field], errors


def test_eap_payload_carries_the_keys_android_10_reads_and_leaves_out_empty_ones():
    eap = EapSettings(method="TLS", identity="dev1", domain="radius.corp.example",
                      ca_certificate=CA, user_certificate=CLIENT, phase2="NONE")
    payload = build_payload(eap_network(eap, password=None, base=SSP_WIFI))
    wifi = {key.removeprefix(W): value for key, value in payload.items() if key.startswith(W)}
    assert wifi == {"SSID": "Corp-Guest-5G", "SECURITY_TYPE": "EAP", "EAP_METHOD": "TLS",
                    "IDENTITY": "dev1", "DOMAIN": "radius.corp.example", "CA_CERTIFICATE": CA,
                    "USER_CERTIFICATE": CLIENT}
    peap = build_payload(eap_network(PEAP))
    assert (peap[W + "PASSWORD"], peap[W + "PHASE2_AUTH"]) == ("eap-secret", "MSCHAPV2")


def test_a_wpa_network_carries_no_eap_keys_whatever_the_settings_hold():
    payload = build_payload(dataclasses.replace(AUTO_WIFI, wifi_eap=PEAP))
    assert not [key for key in payload if "EAP" in key or "IDENTITY" in key]


# --- certificates ------------------------------------------------------------------------------

def test_ca_certificate_from_pem_or_der_is_one_line_of_base64_der():
    assert CA == ca_certificate_value(eap_certs.ca_der())
    assert base64.b64decode(CA) == eap_certs.ca_der() and "\n" not in CA


@pytest.mark.parametrize("upload,password", [
    (eap_certs.client_pem(), None), (eap_certs.client_pem(b"pem-pass"), "pem-pass"),
    (eap_certs.client_p12(b"p12-pass"), "p12-pass"), (eap_certs.client_p12(None), None)])
def test_client_certificate_becomes_a_pkcs12_that_opens_with_an_empty_password(upload, password):
    value = user_certificate_value(upload, password)
    keystore = pkcs12.load_pkcs12(base64.b64decode(value, validate=True), None)
    assert keystore.cert.certificate.subject.rfc4514_string() == "CN=dev1"
    assert keystore.key is not None and "\n" not in value


@pytest.mark.parametrize("upload,password,fragment", [
    (eap_certs.client_pem(b"pem-pass"), None, "enter its password"),
    (eap_certs.client_pem(b"pem-pass"), "wrong", "check its password"),
    (eap_certs.client_p12(b"p12-pass"), "wrong", "opens with this password"),
    (eap_certs.ca_pem(), None, "no private key"),
    (eap_certs.other_key_pem(), None, "does not belong"),
    (b"", None, "empty"), (b"hello", None, "neither a PKCS#12"),
])
def test_unusable_client_certificate_uploads_say_why(upload, password, fragment):
    with pytest.raises(CertificateError, match=fragment):
        user_certificate_value(upload, password)


def test_a_ca_file_with_two_certificates_or_none_is_refused():
    with pytest.raises(CertificateError, match="exactly one"):
        ca_certificate_value(eap_certs.ca_pem() + eap_certs.ca_pem())
    with pytest.raises(CertificateError, match="not an X.509"):
        ca_certificate_value(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


def test_an_rsa_2048_tls_payload_is_refused_for_its_size_not_drawn():
    rsa_client = user_certificate_value(eap_certs.client_pem(rsa_key=True))
    eap = EapSettings(method="TLS", identity="dev1", ca_certificate=CA,
                      user_certificate=rsa_client)
    errors = validate_settings(eap_network(eap, password=None))
    assert "payload" in errors and "2331 bytes" in errors["payload"]
    assert json.dumps(errors)  # plain strings only
