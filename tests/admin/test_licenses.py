"""Admin → Licenses: the four figures and the total, refused below used + reserved; `flask
licenses show` prints the same figures."""
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.enrollment.models import PendingEnrollment
from portal.licensing.models import LicensePool
from tests.conftest import post_form

LICENSES = "/admin/settings/licenses"


def html_of(response) -> str:
    return response.get_data(as_text=True)


def figure(html: str, name: str) -> str:
    return re.search(rf'<dd data-figure="{name}">([^<]*)</dd>', html).group(1)


def field_error(html: str) -> str:
    match = re.search(r'<span class="error" id="total-error">([^<]*)</span>', html)
    return match.group(1) if match else ""


def set_pool(db, total, used, reserved):
    pool = db.session.get(LicensePool, 1)
    pool.total, pool.used, pool.reserved = total, used, reserved
    db.session.commit()


def test_the_page_shows_the_four_figures_with_thousands_separators(admin_client, db):
    set_pool(db, 148534, 1200, 34)
    html = html_of(admin_client.get(LICENSES))
    assert [figure(html, name) for name in ("total", "used", "reserved", "remaining")] == \
        ["148,534", "1,200", "34", "147,300"]
    assert 'value="148534"' in html and "At least 1,234 (used + reserved)" in html


def test_setting_the_total_is_saved_and_audited(admin_client, db):
    set_pool(db, 10, 3, 2)

    response = post_form(admin_client, LICENSES, total="25")

    assert response.status_code == 303
    assert db.session.get(LicensePool, 1).total == 25
    [event] = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "licenses.set")).all()
    assert (event.actor_type, event.actor, event.details) == (
        "admin", admin_client.admin.username, {"total": 25})
    assert figure(html_of(admin_client.get(LICENSES)), "remaining") == "20"


def test_htmx_save_answers_figures_and_form_and_tells_the_pending_page(admin_htmx_client, db):
    set_pool(db, 10, 3, 2)
    response = post_form(admin_htmx_client, LICENSES, total="1000")
    html = html_of(response)
    assert response.status_code == 200 and html.startswith('<div id="licenses"')
    assert figure(html, "total") == "1,000" and "The total is 1,000 licenses." in html
    assert response.headers["HX-Trigger"] == "licenses-changed"


def test_below_used_plus_reserved_is_refused_with_both_figures(admin_client, db):
    set_pool(db, 10, 3, 2)

    response = post_form(admin_client, LICENSES, total="4")

    assert response.status_code == 422
    assert field_error(html_of(response)) == ("Cannot set 4 licenses: 3 are used and 2 "
                                              "reserved, so at least 5 are needed.")
    assert db.session.get(LicensePool, 1).total == 10


@pytest.mark.parametrize("value, message", [
    ("", "Enter the number of licenses, 0 or more."),
    ("ten", "Not a valid integer value."),
    ("1.5", "Not a valid integer value."),
    ("-1", "The number of licenses must be 0 to 10,000,000."),
    ("10000001", "The number of licenses must be 0 to 10,000,000."),
])
def test_bad_input_is_shown_beside_the_field_and_saves_nothing(admin_client, db, value,
                                                               message):
    set_pool(db, 10, 0, 0)
    response = post_form(admin_client, LICENSES, total=value)
    assert response.status_code == 422 and field_error(html_of(response)) == message
    assert db.session.get(LicensePool, 1).total == 10


def _expired_reservation(db, make_qr_code):
    make_qr_code("auto", licenses=10)
    pending = db.session.scalar(sa.select(PendingEnrollment))
    pending.expires_at = utcnow() - timedelta(hours=1)
    db.session.commit()


def test_an_expired_reservation_counts_as_free_on_the_page_and_when_saving(admin_client, db,
                                                                          make_qr_code):
    _expired_reservation(db, make_qr_code)
    assert figure(html_of(admin_client.get(LICENSES)), "reserved") == "0"

    response = post_form(admin_client, LICENSES, total="0")

    assert response.status_code == 303
    assert db.session.get(LicensePool, 1).total == 0


def test_flask_licenses_show_prints_what_the_console_shows(app, admin_client, db,
                                                           make_qr_code):
    _expired_reservation(db, make_qr_code)
    html = html_of(admin_client.get(LICENSES))

    result = app.test_cli_runner().invoke(args=["licenses", "show"])

    assert result.output.splitlines() == [
        f"{name} {figure(html, name)}" for name in ("total", "used", "reserved", "remaining")]
    assert result.output.splitlines()[2] == "reserved 0"


def test_helpdesk_gets_403_on_licenses(helpdesk_client):
    assert helpdesk_client.get(LICENSES).status_code == 403
