"""Download PDF in Chromium, by its visible name: the QR code's page offers it beside the
printable sheet at 1280 and 360 px, and the file it downloads decodes to the QR's payload."""
import sqlalchemy as sa
import pytest
from playwright.sync_api import expect

from portal.database import db
from portal.enrollment.models import QrCode
from tests.browser.conftest import WizardServer, signed_in_context, wizard_app
from tests.browser.test_pending_actions import _create_named_qr_code
from tests.support.live import serving
from tests.support.pdf import page_images, page_texts, printed_qr

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return wizard_app(tmp_path_factory.mktemp("pdf-portal"))


@pytest.fixture(scope="module")
def server(app):
    with serving(app) as url:
        yield WizardServer(url, "wizard-admin", "wizard admin password 1",
                           app.config["INSTANCE_PATH"] + "/portal.db", "alice password 1234")


@pytest.mark.parametrize("width", [1280, 360])
def test_download_pdf_from_the_qr_codes_page(browser, server, app, artifacts, tmp_path, width):
    context, page = signed_in_context(browser, server, width=width, height=800,
                                      accept_downloads=True)
    try:
        public_id = _create_named_qr_code(page, f"Gym tablets {width}", usage="1")
        link = page.get_by_role("link", name="Download PDF")
        expect(link).to_be_visible()
        page.locator(".qr-image").screenshot(path=artifacts / f"download-pdf-{width}.png")
        # Drawing the PDF reads its fonts first: on a loaded machine that takes seconds.
        with page.expect_download(timeout=60_000) as download:
            link.click()
        assert download.value.suggested_filename == f"qr-code-{public_id}.pdf"
        pdf = open(download.value.path(), "rb").read()
    finally:
        context.close()
    (text,) = page_texts(pdf, tmp_path)
    assert "Alice Smith (alice)" in text and f"Gym tablets {width}" in text
    with app.app_context():
        qr = db.session.scalar(sa.select(QrCode).where(QrCode.public_id == public_id))
        payload, version = qr.payload_text(), qr.qr_version
    (image,) = page_images(pdf, tmp_path)
    assert printed_qr(image, version).text == payload
