"""Page or fragment: plain htmx requests get the fragment, boosts and history restores the page."""
import pytest

PENDING = "/admin/devices/pending"
HX = {"HX-Request": "true"}


def test_plain_htmx_request_for_pending_gets_the_qr_code_table_fragment(admin_htmx_client):
    response = admin_htmx_client.get(PENDING)

    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.startswith('<div id="qr-code-table"')
    assert "<html" not in body and 'id="license-figures"' not in body
    assert "HX-Request" in response.vary


@pytest.mark.parametrize("headers", [
    {**HX, "HX-Boosted": "true"},
    # htmx 2 sends HX-Request along with HX-History-Restore-Request (htmx PR #2013).
    {**HX, "HX-History-Restore-Request": "true"},
    {},
], ids=["boosted", "history restore", "browser"])
def test_boosted_history_restore_and_browser_requests_get_the_full_page(admin_client, headers):
    response = admin_client.get(PENDING, headers=headers)

    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.lstrip().lower().startswith("<!doctype html>")
    assert '<div id="qr-code-table"' in body and '<dl id="license-figures"' in body
    assert "<h1>Pending</h1>" in body


def test_htmx_request_for_license_figures_gets_the_figures_fragment(admin_htmx_client):
    response = admin_htmx_client.get("/admin/devices/licenses")

    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.startswith('<dl id="license-figures"')
    assert body.count('data-figure="') == 4
    assert "HX-Request" in response.vary
