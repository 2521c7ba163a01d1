"""Wi-Fi settings are refused exactly where Android would refuse or misread them."""

import pytest

from portal.android.wifi import SECURITY_TYPES, ssid_warnings, validate_wifi


@pytest.mark.parametrize(
    "ssid, security_type, password",
    [
        ("Corp-Guest-5G", "WPA", "12345678"),
        ("Corp-Guest-5G", "WPA", "x" * 63),
        ("Corp Guest", "WPA", "correct horse battery ~!@#$%^&*()"),
        ("Corp", "WPA", "0123456789abcdef" * 3 + "0123456789abcde"),  # 63 hex: a passphrase
        ("Corp", "WEP", "abcde"),
        ("Corp", "WEP", "a b!~"),
        ("Corp", "WEP", "Thirteen-char"),
        ("Corp", "WEP", "0123456789"),
        ("Corp", "WEP", "ABCDEF0123"),
        ("Corp", "WEP", "0123456789abcdef0123456789"),
        ("Guest", "NONE", None),
        ("Guest", "NONE", ""),
        ("Café-Zürich", "WPA", "password123"),
        ("x", "NONE", None),
        ("a" * 32, "NONE", None),
        ("é" * 16, "NONE", None),  # 32 bytes of UTF-8
        ("€" * 10 + "ab", "NONE", None),  # 32 bytes of UTF-8
        ("   ", "NONE", None),  # 802.11 allows an SSID of spaces
        ("Büro 📶", "NONE", None),
    ],
)
def test_networks_android_accepts_have_no_errors(ssid, security_type, password):
    assert validate_wifi(ssid, security_type, password) == {}


@pytest.mark.parametrize(
    "ssid, security_type, password, field, fragment",
    [
        ("Corp", "WPA2", "password123", "security_type", "choose WPA for WPA/WPA2"),
        ("Corp", "wpa", "password123", "security_type", "choose WPA for WPA/WPA2"),
        ("Corp", "wep", "abcde", "security_type", "not understood by Android"),
        ("Corp", "WPA-EAP", "password123", "security_type", "not understood by Android"),
        ("Corp", "", "password123", "security_type", "Security Type is required"),
        ("Corp", None, "password123", "security_type", "Security Type is required"),
        ("Corp", "WPA", "1234567", "password", "8–63 characters long, not 7"),
        ("Corp", "WPA", "x" * 64, "password", "8–63 characters long, not 64"),
        ("Corp", "WPA", "0123456789abcdef" * 4, "password", "64-digit hexadecimal raw key"),
        ("Corp", "WPA", "0123456789ABCDEF" * 4, "password", "enter the 8–63 character passphrase"),
        ("Corp", "WPA", "pässwort123", "password", "printable ASCII"),
        ("Corp", "WPA", "pass\tword1", "password", "printable ASCII"),
        ("Corp", "WPA", "password\x7f1", "password", "printable ASCII"),
        ("Corp", "WPA", None, "password", "Password is required for a WPA network"),
        ("Corp", "WPA", "", "password", "Password is required for a WPA network"),
        ("Corp", "WEP", None, "password", "Password is required for a WEP network"),
        ("Corp", "WEP", "abcd", "password", "5 or 13 printable ASCII"),
        ("Corp", "WEP", "abcdef", "password", "5 or 13 printable ASCII"),
        ("Corp", "WEP", "abcdefghijkl", "password", "5 or 13 printable ASCII"),
        ("Corp", "WEP", "abcdefghijklmn", "password", "5 or 13 printable ASCII"),
        ("Corp", "WEP", "abcdefghijklmnop", "password", "5 or 13 printable ASCII"),
        ("Corp", "WEP", "012345678", "password", "10 or 26 hexadecimal digits"),
        ("Corp", "WEP", "0123456789a", "password", "10 or 26 hexadecimal digits"),
        ("Corp", "WEP", "0123456789abcdef012345678", "password", "10 or 26 hexadecimal"),
        ("Corp", "WEP", "0123456789abcdef0123456789a", "password", "10 or 26 hexadecimal"),
        ("Corp", "WEP", "0123456789abcdef" * 2, "password", "10 or 26 hexadecimal"),
        ("Corp", "WEP", "abcdefghij", "password", "10 or 26 hexadecimal"),
        ("Corp", "WEP", "ghijklmnopqrstuvwxyzghijkl", "password", "10 or 26 hexadecimal"),
        ("Corp", "WEP", "café1", "password", "5 or 13 printable ASCII"),
        ("Corp", "NONE", "password123", "password", "remove it, or choose WPA or WEP"),
        ("", "NONE", None, "ssid", "SSID is required"),
        (None, "NONE", None, "ssid", "SSID is required"),
        ("a" * 33, "NONE", None, "ssid", "33 bytes long in UTF-8"),
        ("€" * 11, "NONE", None, "ssid", "33 bytes long in UTF-8"),
        ("é" * 17, "NONE", None, "ssid", "34 bytes long in UTF-8"),
        ("Corp\nGuest", "NONE", None, "ssid", "control characters"),
        ("Corp\x00", "NONE", None, "ssid", "control characters"),
    ],
)
def test_network_android_would_refuse_names_the_field(ssid, security_type, password, field, fragment):
    errors = validate_wifi(ssid, security_type, password)
    assert list(errors) == [field]
    assert fragment in errors[field]


def test_all_problems_are_reported_at_once():
    errors = validate_wifi("", "WPA", "short")
    assert set(errors) == {"ssid", "password"}


def test_password_is_not_judged_against_an_unknown_security_type():
    assert set(validate_wifi("Corp", "WPA2", "x")) == {"security_type"}


def test_messages_are_sentences_naming_the_field_as_the_admin_sees_it():
    errors = validate_wifi("", "WPA2", None)
    errors.update(validate_wifi("Corp", "WPA", "short"))
    labels = {"ssid": "SSID", "security_type": "Security Type", "password": "Password"}
    assert set(errors) == set(labels)
    for field, message in errors.items():
        assert message.startswith(labels[field])
        assert message.endswith(".")


def test_security_types_are_exactly_the_four_android_reads():
    assert SECURITY_TYPES == ("WPA", "WEP", "EAP", "NONE")


@pytest.mark.parametrize(
    "ssid, fragment",
    [('"Corp-Guest"', "double quotes"), (" Corp", "starts or ends with a space"), ("Corp ", "space")],
)
def test_suspicious_ssids_get_a_warning_but_no_error(ssid, fragment):
    assert validate_wifi(ssid, "NONE", None) == {}
    assert any(fragment in warning for warning in ssid_warnings(ssid))


@pytest.mark.parametrize("ssid", ["Corp-Guest", 'Corp "5G"', "Büro", "", None])
def test_ordinary_ssids_get_no_warning(ssid):
    assert ssid_warnings(ssid) == []
