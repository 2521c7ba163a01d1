"""The Pending list: Name search, filters by state and option, devices per Self Service Portal
QR code (issue 13 point 9)."""
import secrets
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.database import db as database
from portal.database import utcnow
from portal.enrollment.models import Device, PendingEnrollment
from portal.enrollment.pending import revoke_qr_code
from portal.provisioning import listing
from portal.provisioning.pending_actions import delete_pending

PENDING = "/admin/devices/pending"


def add_device(qr, user, serial):
    database.session.add(Device(
        public_id=secrets.token_urlsafe(9), qr_code_id=qr.id, user_id=user.id,
        serial_number=serial, manufacturer="samsung", model="SM-X200", android_api_level=33,
        state="enrolled", token_hash=secrets.token_hex(32)))
    database.session.commit()


@pytest.fixture
def fleet(make_qr_code, make_user, admin_client, db):
    """One QR code in each state, and a Self Service Portal QR code used by two devices."""
    admin = admin_client.admin
    qrs = {"ssp": make_qr_code("ssp", licenses=50, name="Reception kiosk"),
           "active": make_qr_code("auto", usage_count=2, name="Library tablets"),
           "exhausted": make_qr_code("auto", usage_count=1, name="Warehouse scanners"),
           "expired": make_qr_code("auto", usage_count=1),
           "revoked": make_qr_code("auto", usage_count=1)}
    for pending_id in db.session.scalars(sa.select(PendingEnrollment.id).where(
            PendingEnrollment.qr_code_id == qrs["exhausted"].id)):
        delete_pending(qrs["exhausted"], pending_id, deleted_by=admin)
    db.session.execute(sa.update(PendingEnrollment)
                       .where(PendingEnrollment.qr_code_id == qrs["expired"].id)
                       .values(expires_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    revoke_qr_code(qrs["revoked"], revoked_by=admin)
    user = make_user()
    add_device(qrs["ssp"], user, "SSP0001")
    add_device(qrs["ssp"], user, "SSP0002")
    return qrs


def keys(**filters) -> set[int]:
    return {row.id for row in database.session.execute(listing.qr_code_keys(**filters))}


@pytest.mark.parametrize("state, expected", [
    ("active", {"ssp", "active"}), ("exhausted", {"exhausted"}), ("expired", {"expired"}),
    ("revoked", {"revoked"}), (None, {"ssp", "active", "exhausted", "expired", "revoked"}),
])
def test_the_state_filter_matches_the_states_the_rows_show(fleet, state, expected):
    assert keys(state=state) == {fleet[name].id for name in expected}
    rows = listing.qr_code_rows(list(database.session.execute(
        listing.qr_code_keys(state=state))))
    if state:
        assert {row[7] for row in rows} == {state}


def test_the_option_filter_and_both_filters_together(fleet):
    assert keys(option="ssp") == {fleet["ssp"].id}
    assert keys(option="auto") == {fleet[n].id for n in fleet} - {fleet["ssp"].id}
    assert keys(option="auto", state="active") == {fleet["active"].id}
    assert keys(option="bogus", state="bogus") == {qr.id for qr in fleet.values()}


def test_an_ssp_qr_code_counts_the_devices_enrolled_through_it(fleet, admin_client):
    html = admin_client.get(PENDING).get_data(as_text=True)
    row = html.split(f'id="qr-code-{fleet["ssp"].id}"')[1].split("</tr>")[0]
    assert "2 devices enrolled" in row and "Active" in row
    row = html.split(f'id="qr-code-{fleet["exhausted"].id}"')[1].split("</tr>")[0]
    assert "Exhausted" in row and "devices enrolled" not in row


def test_the_list_shows_names_and_the_states(fleet, admin_client):
    html = admin_client.get(PENDING).get_data(as_text=True)
    for name in ("Reception kiosk", "Library tablets", "Warehouse scanners"):
        assert f'<span class="qr-name">{name}</span>' in html
    for badge in ("badge-active", "badge-exhausted", "badge-expired", "badge-revoked"):
        assert badge in html
    assert '<select id="state" name="state"' in html
    assert '<select id="option" name="option"' in html


@pytest.mark.parametrize("query", ["Library", "tablets", "BRARY TAB", "Li"])
def test_the_search_finds_a_qr_code_by_its_name(fleet, admin_client, query):
    """On SQLite, three characters or more go through the FTS5 trigram table (0009 added the
    Name to its text), fewer through the scan of the listing index."""
    html = admin_client.get(PENDING, query_string={"q": query},
                            headers={"HX-Request": "true"}).get_data(as_text=True)
    assert html.lstrip().startswith('<div id="qr-code-table"')
    assert f'id="qr-code-{fleet["active"].id}"' in html
    if len(query) > 2:
        assert f'id="qr-code-{fleet["ssp"].id}"' not in html


def test_a_renamed_qr_code_is_found_by_its_new_name_only(fleet, db):
    qr = fleet["active"]
    qr.name = "Gym iPads"
    db.session.commit()
    assert qr.id in {row.id for row in db.session.execute(listing.qr_code_keys("Gym iPads"))}
    assert qr.id not in {row.id for row in db.session.execute(listing.qr_code_keys("Library"))}


def test_the_filtered_list_answers_only_the_table_and_keeps_the_filters_in_the_pager(
        fleet, admin_client):
    html = admin_client.get(PENDING, query_string={"q": "a", "state": "active"},
                            headers={"HX-Request": "true"}).get_data(as_text=True)
    assert html.lstrip().startswith('<div id="qr-code-table"')
    assert 'name="q"' not in html  # the search input is never replaced


def test_filters_from_the_request_arguments():
    assert listing.filters_from({"state": "expired", "option": "auto"}) == {
        "state": "expired", "option": "auto"}
    assert listing.filters_from({"state": "<script>", "option": ""}) == {
        "state": None, "option": None}


def test_the_pending_page_filters_by_state_and_option(fleet, admin_client):
    html = admin_client.get(PENDING, query_string={"state": "revoked"}).get_data(as_text=True)
    assert f'id="qr-code-{fleet["revoked"].id}"' in html
    assert f'id="qr-code-{fleet["active"].id}"' not in html
    html = admin_client.get(PENDING, query_string={"option": "ssp"}).get_data(as_text=True)
    assert f'id="qr-code-{fleet["ssp"].id}"' in html
    assert f'id="qr-code-{fleet["active"].id}"' not in html


def test_each_automatic_row_offers_reset_otp_and_extend_only_to_whom_may_use_them(
        fleet, admin_client, helpdesk_client):
    active = fleet["active"].public_id
    reset, extend = f"/admin/qr-codes/{active}/otp/reset", f"/admin/qr-codes/{active}/extend"
    html = admin_client.get(PENDING).get_data(as_text=True)
    assert f'href="{reset}"' in html and f'href="{extend}"' in html
    assert f'/admin/qr-codes/{fleet["revoked"].public_id}/otp/reset' not in html
    html = helpdesk_client.get(PENDING).get_data(as_text=True)
    assert f'href="{reset}"' in html and f'href="{extend}"' not in html


def test_the_qr_codes_page_counts_the_devices_enrolled_through_it(fleet, admin_client):
    html = admin_client.get(f"/admin/qr-codes/{fleet['ssp'].public_id}").get_data(as_text=True)
    assert '<dd id="qr-devices">2</dd>' in html
