"""Issue 15 point 5 on the QR code's own pages: the review page's image says what it enrolls,
the printable sheet speaks the QR's language, and the wizard says where a localization without
translations falls back to."""
import re

import pytest

from tests.support.pages import html_of


def _image_alt(html: str, image_id: str) -> str:
    return re.search(rf'<img [^>]*id="{image_id}"[^>]*>', html).group(0).split('alt="')[1] \
        .split('"')[0]


def test_the_review_pages_qr_image_says_what_it_enrolls(admin_client, make_qr_code, make_user):
    qr = make_qr_code("auto", user=make_user(username="alice"), lang="de-CH")

    alt = _image_alt(html_of(admin_client.get(f"/admin/qr-codes/{qr.public_id}")), "qr-image")

    assert alt == "QR code: Automatic Provisioning for alice, Wi-Fi Corp-WLAN, " \
                  "German (Switzerland) (de-CH)"


def test_a_self_service_qr_on_mobile_data_is_described_too(admin_client, make_qr_code):
    qr = make_qr_code("ssp", network="mobile", wifi_ssid=None, wifi_security=None,
                      wifi_password=None, lang="it")

    alt = _image_alt(html_of(admin_client.get(f"/admin/qr-codes/{qr.public_id}")), "qr-image")

    assert alt == "QR code: Self Service Portal, mobile data, Italian (it)"
