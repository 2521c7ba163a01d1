"""Roles are enforced on the server for every console route. The walk below visits the whole
URL map as a Helpdesk admin: a route that is not on the Helpdesk list must answer 403 (and
change nothing), so a route added later without its role check fails here by itself."""
import re

import pytest

from portal.accounts.decorators import admin_required, administrator_required
from tests.security.conftest import (changed_tables, is_admin_rule, methods_of, snapshot,
                                     url_for_rule)
from tests.security.test_routes import PUBLIC_ADMIN_ENDPOINTS

# What a Helpdesk admin may use (PRODUCT: Pending, Devices, QR codes: create, review,
# download, print, View OTP, Reset OTP, revoke, resend mail). Everything else is for
# Administrators: the Admin settings pages, licenses, administrators, users, the audit log.
HELPDESK_ENDPOINTS = {
    "admin.home", "admin.devices", "admin.pending", "admin.license_figures",
    "admin.new_qr_code", "admin.qr_code_version", "admin.search_directory_users",
    "admin.create_qr_code",
    "admin.search_users", "admin.qr_code", "admin.qr_code_image", "admin.print_qr_code",
    "admin.view_qr_code_otp", "admin.confirm_revoke_qr_code", "admin.revoke_qr_code",
    "admin.confirm_resend_message", "admin.resend_message", "admin.logout",
    # Each admin's own two-step sign-in: turn on, turn off, new recovery codes.
    "admin.two_step", "admin.turn_off_two_step", "admin.new_recovery_codes",
    "admin.confirm_reset_qr_code_otp", "admin.reset_qr_code_otp", "admin.mail_qr_code_again",
    "admin.account_password",
    "admin.device", "admin.export_devices",
    # Stale QR codes: Regenerate (like creating one); Export of the payload (like View OTP).
    "admin.confirm_regenerate_qr_code", "admin.regenerate_qr_code",
    "admin.qr_code_payload", "admin.confirm_qr_code_payload_with_secrets",
    "admin.download_qr_code_payload_with_secrets",
    # Bulk provisioning: many QR codes at once (as the wizard makes one), and its batches.
    "admin.bulk_provisioning", "admin.bulk_template", "admin.preview_bulk", "admin.confirm_bulk",
    "admin.batches", "admin.batch", "admin.batch_progress", "admin.restart_batch",
    "admin.confirm_revoke_batch", "admin.revoke_batch",
    # The printable sheets as PDF, like the printable sheet: one QR code's, a batch's.
    "admin.print_qr_code_pdf", "admin.print_batch",
}


def forbidden_to_helpdesk(app, db, client, known) -> list[str]:
    """Every (route, method) off the Helpdesk list that did not answer 403 or changed a table."""
    problems = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not is_admin_rule(rule) or rule.endpoint in PUBLIC_ADMIN_ENDPOINTS | HELPDESK_ENDPOINTS:
            continue
        url = url_for_rule(app, rule, known)
        for method in methods_of(rule):
            before = snapshot(db) if method != "GET" else None
            response = client.open(url, method=method, headers={"X-CSRFToken": client.csrf_token})
            problem = None if response.status_code == 403 else f"answered {response.status_code}"
            if before and (changed := changed_tables(before, snapshot(db))):
                problem = f"{problem or 'refused'}, but changed {', '.join(changed)}"
            if problem:
                problems.append(f"{method} {url}: {problem}")
    return problems


@pytest.fixture
def helpdesk(helpdesk_client):
    helpdesk_client.csrf_token = _csrf(helpdesk_client)
    return helpdesk_client


def _csrf(client) -> str:
    html = client.get("/admin/devices/pending").get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def test_every_route_off_the_helpdesk_list_answers_403_to_helpdesk(app, db, known, helpdesk):
    assert forbidden_to_helpdesk(app, db, helpdesk, known) == []


def test_the_helpdesk_list_is_real_and_helpdesk_reaches_its_pages(app, known, helpdesk):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert HELPDESK_ENDPOINTS <= endpoints, HELPDESK_ENDPOINTS - endpoints
    for rule in app.url_map.iter_rules():
        if rule.endpoint in HELPDESK_ENDPOINTS and "GET" in rule.methods:
            response = helpdesk.get(url_for_rule(app, rule, known))
            assert response.status_code in (200, 302), (rule.rule, response.status_code)


def test_the_walk_flags_a_route_that_forgets_its_role(app, db, known, make_admin):
    def forgotten():
        return "every administrator's password"

    def kept():
        return "fine"

    app.add_url_rule("/admin/forgotten", "admin.forgotten", admin_required(forgotten))
    app.add_url_rule("/admin/kept", "admin.kept", administrator_required(kept))
    client = _signed_in_helpdesk(app, make_admin)

    problems = forbidden_to_helpdesk(app, db, client, known)

    assert problems == ["GET /admin/forgotten: answered 200"]


def _signed_in_helpdesk(app, make_admin):
    from tests.conftest import _signed_in
    client = _signed_in(app.test_client(), make_admin(role="helpdesk"))
    client.csrf_token = _csrf(client)
    return client


def test_a_forbidden_page_is_the_consoles_403_with_the_helpdesk_menu(helpdesk):
    response = helpdesk.get("/admin/settings/companion")

    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "Not allowed" in html and "Your role, Helpdesk" in html
    nav = re.search(r'<nav class="mainnav".*?</nav>', html, re.S).group(0)
    assert re.findall(r'<a href="[^"]+"[^>]*>([^<]+)</a>', nav) == ["Devices", "Pending", "Devices"]


def test_an_administrator_sees_the_admin_section(admin_client):
    html = admin_client.get("/admin/devices/pending").get_data(as_text=True)
    nav = re.search(r'<nav class="mainnav".*?</nav>', html, re.S).group(0)
    assert "Admin</a>" in nav and "Audit log</a>" in nav
