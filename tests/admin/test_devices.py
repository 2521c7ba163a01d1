"""Devices → Devices: the list, its search and filters, CSV export, a device page with its
timeline, and Retire (Administrator only)."""
import csv
import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.enrollment import errors
from portal.enrollment.completion import complete
from portal.enrollment.devices import android_version
from portal.enrollment.models import Device
from portal.enrollment.redeem import DeviceInfo, redeem
from portal.enrollment.tickets import issue_ticket
from portal.licensing.seats import figures
from portal.web.csv_export import neutralize
from tests.api.conftest import assert_figures_exact, otp_of
from tests.conftest import csrf_token_from

LIST = "/admin/devices/"


def enroll(qr, serial, *, otp=None, ticket=None, model="SM-G991B", imei=None, api=33,
           manufacturer="samsung"):
    """A device redeems the QR code through the domain function, as the API does."""
    info = DeviceInfo(serial_number=serial, manufacturer=manufacturer, model=model,
                      android_api_level=api, imei=imei)
    if ticket is None and otp is None:
        otp = otp_of(qr)
    result = redeem(qr.public_id, otp=otp, ticket=ticket, device=info,
                    client_address="192.0.2.7")
    return Device.query.filter_by(public_id=result.device_id).one()


@pytest.fixture
def fleet(db, make_qr_code, make_user):
    """Four devices of an automatic QR code (one enrolled, one failed, two provisioning) and
    one Self Service Portal device."""
    qr = make_qr_code("auto", usage_count=10, licenses=20,
                      user=make_user("alice", display_name="Alice Smith"))
    enrolled = enroll(qr, "R58N111AAA", imei="356938035643809")
    complete(enrolled, "success", None, client_address="192.0.2.7")
    failed = enroll(qr, "R58N222BBB", model="Pixel 8", manufacturer="Google", api=34)
    complete(failed, "failure", "Wi-Fi not reachable", client_address="192.0.2.7")
    provisioning = enroll(qr, "R58N333CCC", model="Pixel 7", manufacturer="Google", api=36)
    ssp = make_qr_code("ssp")
    bob = make_user("bob")
    self_service = enroll(ssp, "ssp-device-9", ticket=issue_ticket(ssp, bob))
    return {"qr": qr, "ssp": ssp, "enrolled": enrolled, "failed": failed,
            "provisioning": provisioning, "self_service": self_service}


def serials(response) -> list[str]:
    html = response.get_data(as_text=True)
    table = re.search(r'<tbody id="device-rows">(.*?)</tbody>', html, re.S)
    return re.findall(r'<tr id="device-[^"]+">\s*<td><a [^>]+><code>([^<]+)</code>',
                      table.group(1)) if table else []


# --- the list -----------------------------------------------------------------------------

def test_android_versions_follow_the_api_level():
    assert [android_version(level) for level in (24, 25, 26, 27, 28, 29, 33, 36)] == \
        ["7.0", "7.1", "8.0", "8.1", "9", "10", "13", "16"]
    assert android_version(40) == "API 40"


def test_the_list_shows_every_device_newest_first_with_its_columns(admin_client, fleet):
    response = admin_client.get(LIST)

    assert response.status_code == 200
    assert serials(response) == ["ssp-device-9", "R58N333CCC", "R58N222BBB", "R58N111AAA"]
    html = response.get_data(as_text=True)
    row = re.search(r'<tr id="device-%s">(.*?)</tr>' % fleet["enrolled"].public_id, html, re.S)
    cells = row.group(1)
    assert "SM-G991B" in cells and ">13<" in cells and "alice" in cells
    assert f'/admin/qr-codes/{fleet["qr"].public_id}' in cells and "Enrolled" in cells
    assert "UTC" in cells  # enrolled at, last contact
    assert ">16<" in html  # API level 36


def test_the_menu_links_to_devices(admin_client, fleet):
    html = admin_client.get("/admin/devices/pending").get_data(as_text=True)
    assert '<a href="/admin/devices/">Devices</a>' in html


@pytest.mark.parametrize("query, expected", [
    ("r58n111", ["R58N111AAA"]),                # serial number, any case, by prefix
    ("R58N", ["R58N333CCC", "R58N222BBB", "R58N111AAA"]),
    ("3569380356", ["R58N111AAA"]),            # IMEI prefix
    ("pixel", ["R58N333CCC", "R58N222BBB"]),   # model
    ("bob", ["ssp-device-9"]),                  # user name
    ("nothing-like-it", []),
])
def test_search_matches_serial_imei_model_and_user(admin_client, fleet, query, expected):
    assert serials(admin_client.get(LIST, query_string={"q": query})) == expected


def test_search_by_qr_id(admin_client, fleet):
    response = admin_client.get(LIST, query_string={"q": fleet["ssp"].public_id})
    assert serials(response) == ["ssp-device-9"]


def test_search_treats_like_wildcards_as_text(admin_client, fleet):
    assert serials(admin_client.get(LIST, query_string={"q": "%"})) == []
    assert serials(admin_client.get(LIST, query_string={"q": "R58N_"})) == []


@pytest.mark.parametrize("state, expected", [
    ("enrolled", ["R58N111AAA"]), ("failed", ["R58N222BBB"]),
    ("provisioning", ["ssp-device-9", "R58N333CCC"]), ("retired", []),
])
def test_filter_by_state(admin_client, fleet, state, expected):
    assert serials(admin_client.get(LIST, query_string={"state": state})) == expected


def test_unknown_state_or_too_long_search_reads_as_no_filter(admin_client, fleet):
    assert len(serials(admin_client.get(LIST, query_string={"state": "lost"}))) == 4
    assert len(serials(admin_client.get(LIST, query_string={"q": "x" * 65}))) == 4


def test_stuck_means_provisioning_longer_than_the_setting(app, db, admin_client, fleet):
    assert serials(admin_client.get(LIST, query_string={"state": "stuck"})) == []
    db.session.execute(sa.update(Device).where(Device.id == fleet["provisioning"].id)
                       .values(created_at=utcnow() - timedelta(minutes=121)))
    db.session.execute(sa.update(Device).where(Device.id == fleet["enrolled"].id)
                       .values(created_at=utcnow() - timedelta(minutes=500)))
    db.session.commit()

    assert serials(admin_client.get(LIST, query_string={"state": "stuck"})) == ["R58N333CCC"]
    app.config["DEVICE_STUCK_AFTER_MINUTES"] = 180
    assert serials(admin_client.get(LIST, query_string={"state": "stuck"})) == []


def test_search_and_state_combine(admin_client, fleet):
    response = admin_client.get(LIST, query_string={"q": "pixel", "state": "failed"})
    assert serials(response) == ["R58N222BBB"]


def test_htmx_search_answers_only_the_table(admin_htmx_client, fleet):
    response = admin_htmx_client.get(LIST, query_string={"q": "pixel"})
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith("<div id=\"device-table\"") or 'id="device-table"' in html
    assert 'name="q"' not in html and "<nav" not in html.split("device-table")[0]
    assert 'href="/admin/devices/export.csv?q=pixel"' in html  # the export follows the search


def test_pager_walks_the_list_by_keyset(db, admin_client, make_qr_code):
    qr = make_qr_code("auto", usage_count=30, licenses=40)
    for number in range(27):
        enroll(qr, f"PAGER{number:03d}")
    first = admin_client.get(LIST)
    html = first.get_data(as_text=True)
    assert len(serials(first)) == 25 and "Page 1" in html
    older = re.search(r'href="(/admin/devices/\?after=[^"]+)"', html).group(1)
    second = admin_client.get(older.replace("&amp;", "&"))
    assert serials(second) == ["PAGER001", "PAGER000"]


# --- CSV export ---------------------------------------------------------------------------

def test_csv_export_streams_the_filtered_list_formula_safe(db, admin_client, make_qr_code):
    qr = make_qr_code("auto", usage_count=3, licenses=5)
    enroll(qr, "=HYPERLINK(1)", model="+Model")
    enroll(qr, "PLAIN123")

    response = admin_client.get("/admin/devices/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:4] == ["Serial number", "IMEI", "Manufacturer", "Model"]
    assert [row[0] for row in rows[1:]] == ["PLAIN123", "'=HYPERLINK(1)"]
    # (A QR ID is random URL-safe text: one that starts with "-" is neutralized like any cell.)
    assert rows[2][3] == "'+Model" and rows[2][4] == "13" and \
        rows[2][7] == neutralize(qr.public_id)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", rows[2][9])  # created

    filtered = admin_client.get("/admin/devices/export.csv", query_string={"q": "plain"})
    assert len(list(csv.reader(io.StringIO(filtered.get_data(as_text=True))))) == 2


def test_csv_export_reads_in_batches(db, admin_client, make_qr_code, monkeypatch):
    from portal.enrollment import devices
    monkeypatch.setattr(devices, "EXPORT_BATCH", 2)
    qr = make_qr_code("auto", usage_count=5, licenses=5)
    for number in range(5):
        enroll(qr, f"BATCH{number}")
    response = admin_client.get("/admin/devices/export.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert [row[0] for row in rows[1:]] == [f"BATCH{n}" for n in (4, 3, 2, 1, 0)]


# --- one device ---------------------------------------------------------------------------

def page_of(client, device):
    return client.get(f"/admin/devices/{device.public_id}")


def test_device_page_shows_what_the_device_told_us(admin_client, fleet):
    response = page_of(admin_client, fleet["enrolled"])
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for text in ("R58N111AAA", "356938035643809", "samsung", "SM-G991B", "13 (API level 33)",
                 "alice", "Alice Smith", fleet["qr"].public_id, "Enrolled", "Last contact"):
        assert text in html, text


def test_device_page_shows_the_failure_reason_and_timeline(admin_client, fleet):
    html = page_of(admin_client, fleet["failed"]).get_data(as_text=True)
    assert 'id="failure-reason">Wi-Fi not reachable' in html
    timeline = re.search(r'<table id="device-timeline"[^>]*>(.*?)</table>', html, re.S).group(1)
    assert timeline.index("Redeemed the QR code") < timeline.index("Provisioning failed")
    assert "badge-error" in timeline and "Reason: Wi-Fi not reachable" in timeline


def test_a_reported_failure_is_an_error_in_the_audit_log(db, fleet):
    event = db.session.scalar(sa.select(AuditEvent).where(
        AuditEvent.action == "enrollment.complete", AuditEvent.code == "failed"))
    assert event.outcome == "error" and event.details == {"reason": "Wi-Fi not reachable"}
    assert event.target == fleet["failed"].public_id


def test_timeline_shows_refusals_and_retries_for_its_serial(db, admin_client, fleet):
    qr = fleet["qr"]
    with pytest.raises(errors.InvalidCredentials):
        redeem(qr.public_id, otp="WRONG-OTP-123", ticket=None, client_address="192.0.2.7",
               device=DeviceInfo("R58N333CCC", "Google", "Pixel 7", 36))
    enroll(qr, "R58N333CCC", model="Pixel 7", manufacturer="Google", api=36)  # a retry
    html = page_of(admin_client, fleet["provisioning"]).get_data(as_text=True)
    timeline = re.search(r'<table id="device-timeline"[^>]*>(.*?)</table>', html, re.S).group(1)
    assert "Redemption refused" in timeline and "invalid_credentials" in timeline
    assert "Redeemed again (retry)" in timeline
    assert "R58N111AAA" not in timeline


def test_self_service_devices_are_listed_and_have_a_page(admin_client, fleet):
    html = page_of(admin_client, fleet["self_service"]).get_data(as_text=True)
    assert "Self Service Portal" in html and "bob" in html


@pytest.mark.parametrize("device_id", ["nope", "x" * 40, "%00", "1"])
def test_unknown_device_ids_answer_404(admin_client, fleet, device_id):
    assert admin_client.get(f"/admin/devices/{device_id}").status_code == 404
    assert admin_client.get(f"/admin/devices/{device_id}/retire").status_code == 404


def test_helpdesk_sees_list_page_and_export_but_cannot_retire(db, helpdesk_client, fleet):
    device = fleet["enrolled"]
    assert helpdesk_client.get(LIST).status_code == 200
    assert helpdesk_client.get("/admin/devices/export.csv").status_code == 200
    page = page_of(helpdesk_client, device)
    assert page.status_code == 200 and ">Retire</button>" not in page.get_data(as_text=True)
    assert helpdesk_client.get(f"/admin/devices/{device.public_id}/retire").status_code == 403
    token = csrf_token_from(page.get_data(as_text=True))
    response = helpdesk_client.post(f"/admin/devices/{device.public_id}/retire",
                                    data={"csrf_token": token})
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(Device, device.id).state == "enrolled"


# --- retire -------------------------------------------------------------------------------

def retire(client, device):
    page = page_of(client, device)
    token = csrf_token_from(page.get_data(as_text=True))
    return client.post(f"/admin/devices/{device.public_id}/retire", data={"csrf_token": token})


def test_confirm_page_names_the_device(admin_client, fleet):
    device = fleet["enrolled"]
    html = admin_client.get(f"/admin/devices/{device.public_id}/retire").get_data(as_text=True)
    assert "Retire device R58N111AAA (samsung SM-G991B)?" in html
    assert "license returns to the pool" in html
    page = page_of(admin_client, device).get_data(as_text=True)
    assert 'hx-confirm="Retire device R58N111AAA (samsung SM-G991B)?' in page


def test_retire_returns_the_license_and_is_audited(db, admin_client, fleet):
    device = fleet["enrolled"]
    used = figures().used

    response = retire(admin_client, device)

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/admin/devices/{device.public_id}")
    db.session.refresh(device)
    assert device.state == "retired" and device.retired_at is not None
    assert device.retired_by_id is not None
    assert figures().used == used - 1
    assert_figures_exact(db)
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "device.retire"))
    assert (event.target, event.serial_number, event.outcome) == \
        (device.public_id, "R58N111AAA", "success")
    assert event.details == {"before": "enrolled", "license_released": True}
    html = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "was retired; its license returned to the pool" in html
    assert "Retired by" in html and ">Retire</button>" not in html


def test_retiring_twice_says_so_and_releases_once(db, admin_client, fleet):
    device = fleet["provisioning"]
    token = csrf_token_from(page_of(admin_client, device).get_data(as_text=True))
    url = f"/admin/devices/{device.public_id}/retire"
    used = figures().used
    admin_client.post(url, data={"csrf_token": token})
    second = admin_client.post(url, data={"csrf_token": token}, follow_redirects=True)

    assert "was already retired" in second.get_data(as_text=True)
    assert figures().used == used - 1
    assert_figures_exact(db)


def test_retiring_a_failed_device_releases_nothing(db, admin_client, fleet):
    used = figures().used
    retire(admin_client, fleet["failed"])
    db.session.refresh(fleet["failed"])
    assert fleet["failed"].state == "retired" and figures().used == used
    assert_figures_exact(db)


def test_retire_without_csrf_is_refused(db, admin_client, fleet):
    device = fleet["enrolled"]
    response = admin_client.post(f"/admin/devices/{device.public_id}/retire")
    assert response.status_code == 400
    db.session.refresh(device)
    assert device.state == "enrolled"


def test_htmx_retire_redirects_to_the_device(admin_htmx_client, fleet):
    device = fleet["enrolled"]
    boosted = admin_htmx_client.get(f"/admin/devices/{device.public_id}",
                                    headers={"HX-Boosted": "true"})  # the whole page
    token = csrf_token_from(boosted.get_data(as_text=True))
    response = admin_htmx_client.post(f"/admin/devices/{device.public_id}/retire",
                                      data={"csrf_token": token})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].endswith(device.public_id)


def test_retired_filter_and_timeline(admin_client, fleet):
    retire(admin_client, fleet["enrolled"])
    assert serials(admin_client.get(LIST, query_string={"state": "retired"})) == ["R58N111AAA"]
    html = page_of(admin_client, fleet["enrolled"]).get_data(as_text=True)
    assert "Retired by" in html


def test_a_search_matching_many_reads_the_list_in_order(admin_client, fleet, monkeypatch):
    from portal.enrollment import devices
    monkeypatch.setattr(devices, "FEW", 1)
    assert serials(admin_client.get(LIST, query_string={"q": "r58n"})) == \
        ["R58N333CCC", "R58N222BBB", "R58N111AAA"]
    assert serials(admin_client.get(LIST, query_string={"q": "PIXEL", "state": "failed"})) == \
        ["R58N222BBB"]


def test_demo_data_devices_fill_the_list_with_contact_and_retirement(db, admin_client):
    from portal.demo_data import Sizes, generate
    generate(Sizes(devices=60, qr_codes=6, pending=30, audit=40))
    devices = db.session.scalars(sa.select(Device)).all()
    assert len(devices) == 60 and all(device.last_contact_at for device in devices)
    assert all(device.retired_at for device in devices if device.state == "retired")
    assert len(serials(admin_client.get(LIST))) == 25
    failed = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "enrollment.complete", AuditEvent.code == "failed")).all()
    assert all(event.outcome == "error" and event.details["reason"] for event in failed)
    assert_figures_exact(db)


def test_the_timeline_pager_swaps_only_the_timeline(admin_htmx_client, db, make_qr_code):
    """An htmx request for another page of the timeline answers the timeline alone, which its
    pager links replace (closest [data-list]); a row's link elsewhere stays a page link."""
    from tests.security.conftest import _enrolled_device
    device_id = _enrolled_device(make_qr_code("auto"))

    html = admin_htmx_client.get(f"/admin/devices/{device_id}").get_data(as_text=True)

    assert html.startswith('<div id="timeline" data-list>')
    assert "<header" not in html and "Redeemed the QR code" in html
