"""The QR payload is exactly the JSON of companion-api.md §1, and bad settings never reach it."""

import dataclasses
import json

import pytest

from portal.android.payload import (
    MAX_PAYLOAD_BYTES,
    PREFIX,
    WARN_VERSION,
    CompanionConfig,
    PayloadError,
    PayloadSettings,
    android_locale,
    build_payload,
    encode_payload,
    payload_bytes,
    validate_settings,
)

CHECKSUM = "I5YvS0O5hXY46mb01BlRjq4oJJGs2kuUcHvVkAPEXlg"  # 32 bytes, unpadded
COMPANION = CompanionConfig(
    component_name="com.example.companion/.AdminReceiver",
    download_url="https://downloads.example.com/companion.apk",
    signature_checksum=CHECKSUM,
)
AUTO_WIFI = PayloadSettings(
    companion=COMPANION,
    server_url="https://portal.example.com/",
    option="auto",
    qr_id="Ab3dEf6hIj9kLm0n",
    lang="de-CH",
    network="wifi",
    wifi_ssid="Corp-Guest-5G",
    wifi_security_type="WPA",
    wifi_password="s3cret-passphrase!",
    user="alice.smith@example.com",
    otp="Q7x9-K2m4-Pz",
)
SSP_MOBILE = PayloadSettings(
    companion=COMPANION,
    server_url="https://portal.example.com",
    option="ssp",
    qr_id="Zy8xWv7uTs6r",
    lang="it",
    network="mobile",
)


def settings(base=AUTO_WIFI, **changes):
    return dataclasses.replace(base, **changes)


def companion(**changes):
    return settings(companion=dataclasses.replace(COMPANION, **changes))


def test_automatic_wifi_payload_is_exactly_the_contract():
    assert build_payload(AUTO_WIFI) == {
        "android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME": "com.example.companion/.AdminReceiver",
        "android.app.extra.PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION": "https://downloads.example.com/companion.apk",
        "android.app.extra.PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM": CHECKSUM,
        "android.app.extra.PROVISIONING_WIFI_SSID": "Corp-Guest-5G",
        "android.app.extra.PROVISIONING_WIFI_SECURITY_TYPE": "WPA",
        "android.app.extra.PROVISIONING_WIFI_PASSWORD": "s3cret-passphrase!",
        "android.app.extra.PROVISIONING_LOCALE": "de_CH",
        "android.app.extra.PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED": True,
        "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE": {
            "server_url": "https://portal.example.com",
            "option": "auto",
            "qr_id": "Ab3dEf6hIj9kLm0n",
            "lang": "de-CH",
            "user": "alice.smith@example.com",
            "otp": "Q7x9-K2m4-Pz",
        },
    }


def test_self_service_mobile_payload_is_exactly_the_contract():
    assert build_payload(SSP_MOBILE) == {
        PREFIX + "PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME": "com.example.companion/.AdminReceiver",
        PREFIX + "PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION": "https://downloads.example.com/companion.apk",
        PREFIX + "PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM": CHECKSUM,
        PREFIX + "PROVISIONING_USE_MOBILE_DATA": True,
        PREFIX + "PROVISIONING_LOCALE": "it",
        PREFIX + "PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED": True,
        PREFIX + "PROVISIONING_ADMIN_EXTRAS_BUNDLE": {
            "server_url": "https://portal.example.com",
            "option": "ssp",
            "qr_id": "Zy8xWv7uTs6r",
            "lang": "it",
        },
    }


def test_encoded_payload_is_compact_json_with_real_booleans():
    text = encode_payload(build_payload(settings(wifi_hidden=True)))
    assert ": " not in text and ", " not in text
    assert '"android.app.extra.PROVISIONING_WIFI_HIDDEN":true' in text
    assert '"android.app.extra.PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED":true' in text
    assert '"true"' not in text
    assert json.loads(text) == build_payload(settings(wifi_hidden=True))


def test_encoded_payload_keeps_the_build_order_and_non_ascii_text():
    payload = build_payload(settings(wifi_ssid="Café-Zürich"))
    text = encode_payload(payload)
    assert list(json.loads(text)) == list(payload)
    assert '"Café-Zürich"' in text
    assert payload_bytes(text) == len(text) + 2  # é and ü take two bytes each


def test_every_key_carries_the_android_prefix():
    assert all(key.startswith("android.app.extra.PROVISIONING_") for key in build_payload(AUTO_WIFI))


def test_default_valued_keys_are_left_out():
    payload = build_payload(
        settings(wifi_hidden=False, companion=dataclasses.replace(COMPANION, leave_system_apps_enabled=False))
    )
    assert PREFIX + "PROVISIONING_WIFI_HIDDEN" not in payload
    assert PREFIX + "PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED" not in payload
    assert PREFIX + "PROVISIONING_USE_MOBILE_DATA" not in payload


def test_hidden_network_is_json_true():
    assert build_payload(settings(wifi_hidden=True))[PREFIX + "PROVISIONING_WIFI_HIDDEN"] is True


def test_mobile_payload_has_no_wifi_keys_even_if_wifi_fields_are_filled():
    payload = build_payload(settings(network="mobile"))
    assert payload[PREFIX + "PROVISIONING_USE_MOBILE_DATA"] is True
    assert not [key for key in payload if "WIFI" in key]


def test_open_network_has_no_password_key():
    payload = build_payload(settings(wifi_security_type="NONE", wifi_password=None))
    assert payload[PREFIX + "PROVISIONING_WIFI_SECURITY_TYPE"] == "NONE"
    assert PREFIX + "PROVISIONING_WIFI_PASSWORD" not in payload


def test_wep_network_carries_its_key():
    payload = build_payload(settings(wifi_security_type="WEP", wifi_password="0123456789"))
    assert payload[PREFIX + "PROVISIONING_WIFI_PASSWORD"] == "0123456789"


def test_ssid_is_carried_bare_without_added_quotes():
    payload = build_payload(settings(wifi_ssid="Büro 2"))
    assert payload[PREFIX + "PROVISIONING_WIFI_SSID"] == "Büro 2"


def test_admin_extras_are_all_strings_and_self_service_has_no_credentials():
    for base in (AUTO_WIFI, SSP_MOBILE):
        extras = build_payload(base)[PREFIX + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"]
        assert all(isinstance(value, str) for value in extras.values())
    assert set(build_payload(SSP_MOBILE)[PREFIX + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"]) == {
        "server_url", "option", "qr_id", "lang"
    }


def test_server_url_loses_its_trailing_slash_but_keeps_its_path():
    extras = build_payload(settings(server_url="http://portal.local:8080/mdm/"))[
        PREFIX + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"
    ]
    assert extras["server_url"] == "http://portal.local:8080/mdm"


@pytest.mark.parametrize("checksum", [CHECKSUM, CHECKSUM + "=", "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w="])
def test_padded_and_unpadded_checksums_are_accepted_and_sent_unpadded(checksum):
    payload = build_payload(companion(signature_checksum=checksum))
    assert payload[PREFIX + "PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM"] == checksum.rstrip("=")


@pytest.mark.parametrize(
    "component_name",
    ["com.example.companion/.AdminReceiver", "com.example.companion/com.example.companion.Admin",
     "com.example.companion/.receivers.Admin_Receiver2", "com.example/.Outer$Receiver"],
)
def test_component_name_forms_android_unflattens_are_accepted(component_name):
    assert validate_settings(companion(component_name=component_name)) == {}


@pytest.mark.parametrize(
    "tag, locale",
    [("de-CH", "de_CH"), ("it", "it"), ("en", "en"), ("en-US", "en_US"), ("en-us", "en_US"),
     ("zh-Hans-CN", "zh_Hans_CN"), ("zh-hant", "zh_Hant"), ("es-419", "es_419"), ("gsw-CH", "gsw_CH")],
)
def test_language_tags_become_android_locales(tag, locale):
    assert android_locale(tag) == locale


def test_locale_in_payload_is_android_form_and_lang_extra_is_the_tag():
    payload = build_payload(settings(lang="de-CH"))
    assert payload[PREFIX + "PROVISIONING_LOCALE"] == "de_CH"
    assert payload[PREFIX + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"]["lang"] == "de-CH"


@pytest.mark.parametrize("tag", ["de_CH", "x", "toolonglanguage", "", "de-", "de-CHE", "d3"])
def test_malformed_language_tags_raise(tag):
    with pytest.raises(PayloadError) as raised:
        android_locale(tag)
    assert list(raised.value.errors) == ["lang"]


EXTRA_LONG_QR_ID = "q" * 2400  # valid on its own; only the total size is wrong


@pytest.mark.parametrize(
    "changed, field, fragment",
    [
        (companion(signature_checksum="I5YvS0O5hXY46mb01BlRjq4oJJGs2kuUcHvVkAPE+lg"), "signature_checksum", "replace + with - and / with _"),
        (companion(signature_checksum="I5YvS0O5hXY46mb01BlRjq4oJJGs2kuUcHvVkAPE/lg"), "signature_checksum", "looks like standard base64"),
        (companion(signature_checksum="2jmj7l5rSw0yVb_vlWAYkK_YBwk"), "signature_checksum", "SHA-1"),
        (companion(signature_checksum="2jmj7l5rSw0yVb_vlWAYkK_YBwk="), "signature_checksum", "SHA-1"),
        (companion(signature_checksum="A" * 42), "signature_checksum", "decodes to 31 bytes"),
        (companion(signature_checksum="A" * 44), "signature_checksum", "decodes to 33 bytes"),
        (companion(signature_checksum=CHECKSUM + "=="), "signature_checksum", "padding is wrong"),
        (companion(signature_checksum="A" * 42 + "="), "signature_checksum", "padding is wrong"),
        (companion(signature_checksum="A" * 41), "signature_checksum", "length or its = padding"),
        (companion(signature_checksum=CHECKSUM[:20] + " " + CHECKSUM[20:]), "signature_checksum", "spaces or line breaks"),
        (companion(signature_checksum=CHECKSUM + "\n"), "signature_checksum", "spaces or line breaks"),
        (companion(signature_checksum=CHECKSUM[:-1] + "!"), "signature_checksum", "URL-safe base64"),
        (companion(signature_checksum=""), "signature_checksum", "is required"),
        (companion(download_url="http://downloads.example.com/companion.apk"), "download_url", 'https:// address'),
        (companion(download_url="https:///companion.apk"), "download_url", "host name is missing"),
        (companion(download_url="https://downloads.example.com/my companion.apk"), "download_url", "spaces"),
        (companion(download_url="downloads.example.com/companion.apk"), "download_url", "https://"),
        (companion(download_url=""), "download_url", "empty"),
        (companion(component_name="com.example.companion"), "component_name", "package/.Receiver"),
        (companion(component_name="com.example.companion/"), "component_name", "package/.Receiver"),
        (companion(component_name="1com.example/.AdminReceiver"), "component_name", "not an Android package name"),
        (companion(component_name="companion/.AdminReceiver"), "component_name", "not an Android package name"),
        (companion(component_name="com..example/.AdminReceiver"), "component_name", "not an Android package name"),
        (companion(component_name="com.example/AdminReceiver"), "component_name", "not a receiver class"),
        (companion(component_name="com.example/.Admin Receiver"), "component_name", "not a receiver class"),
        (settings(lang="de_CH"), "lang", 'e.g. "de-CH" instead of "de_CH"'),
        (settings(lang="x"), "lang", 'Language "x" is not a valid language tag'),
        (settings(lang="toolonglanguage"), "lang", "not a valid language tag"),
        (settings(lang=""), "lang", "not a valid language tag"),
        (settings(otp=None), "otp", "required for Automatic Provisioning"),
        (settings(otp="abc"), "otp", "4–64"),
        (settings(otp="abcd efgh"), "otp", "without spaces"),
        (settings(otp="x" * 65), "otp", "4–64"),
        (settings(user=None), "user", "User is required"),
        (settings(user="alice\n"), "user", "without control characters"),
        (settings(SSP_MOBILE, otp="123456"), "otp", "must be empty for a Self Service Portal"),
        (settings(SSP_MOBILE, user="alice"), "user", "must be empty for a Self Service Portal"),
        (settings(qr_id="Ab3dEf6"), "qr_id", "at least 8 characters"),
        (settings(qr_id="Ab3dEf6h/Ij9"), "qr_id", "letters, digits, - and _"),
        (settings(option="manual"), "option", "ssp, auto"),
        (settings(network="ethernet"), "network", "wifi, mobile"),
        (settings(server_url="ftp://portal.example.com"), "server_url", 'starts with "ftp"'),
        (settings(server_url="https://portal.example.com/?a=1"), "server_url", "?query or #fragment"),
        (settings(server_url="https://portal.example.com/#top"), "server_url", "?query or #fragment"),
        (settings(server_url="https://"), "server_url", "host name is missing"),
        (settings(server_url="https://portal.example.com:99999"), "server_url", "not a valid address"),
        (settings(wifi_security_type="WPA2"), "security_type", "choose WPA for WPA/WPA2"),
        (settings(wifi_password="1234567"), "password", "8–63"),
        (settings(wifi_ssid="€" * 11), "ssid", "33 bytes"),
    ],
)
def test_settings_android_or_the_companion_would_refuse_name_the_field(changed, field, fragment):
    errors = validate_settings(changed)
    assert list(errors) == [field]
    assert fragment in errors[field]
    with pytest.raises(PayloadError) as raised:
        build_payload(changed)
    assert raised.value.errors == errors


def test_huge_user_is_refused_for_its_length_and_for_the_payload_size():
    errors = validate_settings(settings(user="u" * 2500))
    assert set(errors) == {"user", "payload"}
    size = payload_bytes(encode_payload(build_payload(AUTO_WIFI))) + 2500 - len(AUTO_WIFI.user)
    assert f"The QR payload is {size} bytes" in errors["payload"]


def test_payload_of_exactly_the_qr_capacity_is_accepted_and_one_byte_more_is_not():
    base = payload_bytes(encode_payload(build_payload(AUTO_WIFI)))
    fitting = settings(qr_id="q" * (len(AUTO_WIFI.qr_id) + MAX_PAYLOAD_BYTES - base))
    assert payload_bytes(encode_payload(build_payload(fitting))) == MAX_PAYLOAD_BYTES
    errors = validate_settings(settings(fitting, qr_id=fitting.qr_id + "q"))
    assert set(errors) == {"payload", "qr_id"}  # the whole, and the field that makes it dense
    assert "at most 2331 bytes" in errors["payload"]
    assert "2332 bytes" in errors["qr_id"] and "largest part" in errors["qr_id"]


def test_a_payload_too_large_names_its_largest_field():
    errors = validate_settings(settings(qr_id=EXTRA_LONG_QR_ID))
    assert "at most 2331 bytes" in errors["payload"] and "largest part" in errors["qr_id"]
    long_ssid_otp = settings(otp="o" * 64, companion=dataclasses.replace(
        COMPANION, download_url="https://downloads.example.com/" + "d" * 2000 + ".apk"))
    assert "largest part" in validate_settings(long_ssid_otp)["download_url"]


def test_payload_error_reports_every_problem_at_once():
    broken = settings(
        companion=dataclasses.replace(COMPANION, signature_checksum="a+b/", download_url="http://x"),
        lang="de_CH", otp=None, wifi_security_type="wpa",
    )
    with pytest.raises(PayloadError) as raised:
        build_payload(broken)
    assert isinstance(raised.value, ValueError)
    assert set(raised.value.errors) == {"signature_checksum", "download_url", "lang", "otp", "security_type"}


def test_messages_are_sentences_naming_the_field_as_the_admin_sees_it():
    broken = PayloadSettings(
        companion=CompanionConfig("x", "y", "z+"), server_url="", option="auto", qr_id="",
        lang="", network="wifi", user="", otp="",
    )
    labels = {
        "component_name": "Component name", "download_url": "Download URL",
        "signature_checksum": "Signature checksum", "server_url": "Server URL", "qr_id": "QR ID",
        "lang": "Language", "ssid": "SSID", "security_type": "Security Type", "user": "User",
        "otp": "One-time password",
    }
    errors = validate_settings(broken)
    assert set(errors) == set(labels)
    for field, message in errors.items():
        assert message.startswith(labels[field]) and message.endswith(".")


def test_constants_match_the_spec():
    assert (PREFIX, MAX_PAYLOAD_BYTES, WARN_VERSION) == ("android.app.extra.", 2331, 25)
