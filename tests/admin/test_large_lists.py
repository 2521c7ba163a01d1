"""The long lists at any size: a constant number of queries per page, keyset pages on Pending
and View OTP, and demo-data's rows as consistent as the portal's own."""
import html as html_lib
import json
import re
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from portal import vault
from portal.admin import audit as audit_view
from portal.admin import devices as devices_view
from portal.admin import qr_codes as qr_codes_view
from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.demo_data import LOCAL_USER_PASSWORD, Sizes, demo_data_command, generate
from portal.enrollment.models import Device, PendingEnrollment, QrCode
from portal.licensing.seats import figures
from portal.provisioning.review import summary
from tests.conftest import csrf_token, csrf_token_from

PENDING = "/admin/devices/pending"
EXTRAS = "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"


@contextmanager
def statements(db):
    """The SQL statements sent meanwhile (savepoints and all)."""
    seen = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)
    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)


def count_of(db, model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


@pytest.fixture
def demo(db):
    """Demo rows in the test's transaction: 50 QR codes, 600 pending enrollments."""
    generate(Sizes(devices=200, qr_codes=50, pending=600, audit=300))
    return db


@pytest.fixture
def bulk_qr(demo):
    """The automatic QR code with the most pending enrollments (more than 50)."""
    qr = demo.session.scalars(sa.select(QrCode).order_by(
        QrCode.usage_count.desc().nulls_last())).first()
    assert qr.usage_count > 50
    return qr


def links(html: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)"[^>]*rel="{rel}"', html)
    return html_lib.unescape(found[1]) if found else None


# Statements per page

@pytest.mark.parametrize("view, page", [(devices_view, PENDING), (audit_view, "/admin/audit")])
def test_a_page_costs_the_same_queries_with_5_rows_as_with_50(admin_client, demo, monkeypatch,
                                                              view, page):
    counts = {}
    for size in (5, 50):
        monkeypatch.setattr(view, "PAGE_SIZE", size)
        admin_client.get(page)  # anything a first request loads once is loaded
        with statements(demo) as seen:
            html = admin_client.get(page).get_data(as_text=True)
        assert len(re.findall(r'<tr id="(?:qr-code|audit-event)-\d+"', html)) == size
        counts[size] = len(seen)
    assert counts[5] == counts[50] <= 14, counts


def test_view_otp_costs_the_same_queries_with_5_rows_as_with_50(admin_client, demo, bulk_qr,
                                                                monkeypatch):
    url = f"/admin/qr-codes/{bulk_qr.public_id}/otp"
    token = csrf_token(admin_client, f"/admin/qr-codes/{bulk_qr.public_id}")
    counts = {}
    for size in (5, 50):
        monkeypatch.setattr(qr_codes_view, "OTP_PAGE_SIZE", size)
        with statements(demo) as seen:
            html = admin_client.post(url, data={"csrf_token": token}).get_data(as_text=True)
        assert html.count('<tr id="pending-') == size
        counts[size] = len(seen)
    assert counts[5] == counts[50] <= 14, counts


def test_pending_counts_states_only_for_the_qr_codes_on_the_page(admin_client, demo):
    with statements(demo) as seen:
        html = admin_client.get(PENDING).get_data(as_text=True)
    shown = re.findall(r'<tr id="qr-code-(\d+)"', html)
    grouped = [s for s in seen if "GROUP BY pending_enrollments.qr_code_id" in s]
    assert len(grouped) == 1 and "pending_enrollments.qr_code_id IN" in grouped[0]
    assert len(shown) == 25
    # The counts shown are the QR codes' own (only automatic QR codes have pending ones).
    autos = [qr for qr in (demo.session.get(QrCode, int(i)) for i in shown) if qr.option == "auto"]
    assert autos, "no automatic QR code on the first page"
    qr = autos[0]
    pending = count_of(demo, PendingEnrollment, PendingEnrollment.qr_code_id == qr.id,
                       PendingEnrollment.state == "pending")
    assert re.search(rf'<tr id="qr-code-{qr.id}">.*?<td>{pending} pending', html, re.S)


# Keyset pages on Pending and View OTP

def test_pending_pages_forward_and_back_without_a_skip_or_a_repeat(admin_client, demo):
    expected = demo.session.scalars(sa.select(QrCode.id).order_by(
        QrCode.created_at.desc(), QrCode.id.desc())).all()
    url, pages = PENDING, []
    while url:
        html = admin_client.get(url).get_data(as_text=True)
        pages.append([int(i) for i in re.findall(r'<tr id="qr-code-(\d+)"', html)])
        assert f"Page {len(pages)} of 2 (50 QR codes)" in html
        url = links(html, "next")
    assert [i for page in pages for i in page] == expected
    back = admin_client.get(links(html, "prev")).get_data(as_text=True)
    assert [int(i) for i in re.findall(r'<tr id="qr-code-(\d+)"', back)] == pages[0]


def test_pending_search_pages_keep_the_query(admin_client, demo, monkeypatch):
    monkeypatch.setattr(devices_view, "PAGE_SIZE", 3)
    html = admin_client.get(PENDING + "?q=corp-wlan").get_data(as_text=True)
    older = links(html, "next")
    assert older and "q=corp-wlan" in older and "of" not in re.search(
        r"<span>Page 1[^<]*</span>", html)[0]  # no count of the matches: it would cost a scan
    again = admin_client.get(older).get_data(as_text=True)
    assert "Corp-WLAN" in again and "Page 2" in again


def test_view_otp_pages_through_every_pending_enrollment_both_ways(admin_client, bulk_qr, db):
    url = f"/admin/qr-codes/{bulk_qr.public_id}/otp"
    token = csrf_token(admin_client, f"/admin/qr-codes/{bulk_qr.public_id}")
    pages, numbers = [], []
    while url:
        html = admin_client.post(url, data={"csrf_token": token}).get_data(as_text=True)
        pages.append([int(i) for i in re.findall(r'<tr id="pending-(\d+)"', html)])
        numbers += [int(n) for n in re.findall(r'<tr id="pending-\d+"><td>(\d+)</td>', html)]
        found = re.search(r'formaction="([^"]+)"[^>]*>Next page', html)
        url = html_lib.unescape(found[1]) if found else None
    expected = db.session.scalars(sa.select(PendingEnrollment.id).where(
        PendingEnrollment.qr_code_id == bulk_qr.id).order_by(PendingEnrollment.id)).all()
    assert [i for page in pages for i in page] == expected
    assert numbers == list(range(1, len(expected) + 1))
    previous = html_lib.unescape(re.search(r'formaction="([^"]+)"[^>]*>Previous page', html)[1])
    html = admin_client.post(previous, data={"csrf_token": token}).get_data(as_text=True)
    assert [int(i) for i in re.findall(r'<tr id="pending-(\d+)"', html)] == pages[-2]


# demo-data

def test_demo_data_is_consistent_with_the_license_figures(demo):
    f = figures()
    assert f.used == count_of(demo, Device, Device.state.in_(("provisioning", "enrolled")))
    assert f.reserved == count_of(demo, PendingEnrollment, PendingEnrollment.state == "pending")
    assert f.remaining >= 0
    assert count_of(demo, QrCode) == 50 and count_of(demo, Device) == 200
    assert count_of(demo, PendingEnrollment) == 600
    assert count_of(demo, AuditEvent, AuditEvent.action.in_(
        ("qr_code.create", "enrollment.redeem", "enrollment.complete"))) > 0
    usage = demo.session.scalar(sa.select(sa.func.sum(QrCode.usage_count)))
    assert usage == 600


def test_demo_data_has_every_state_and_links_used_enrollments_to_their_devices(demo):
    states = set(demo.session.scalars(sa.select(PendingEnrollment.state).distinct()))
    assert states == {"pending", "used", "expired", "revoked"}
    assert set(demo.session.scalars(sa.select(Device.state).distinct())) == {
        "provisioning", "enrolled", "failed", "retired"}
    assert set(demo.session.scalars(sa.select(QrCode.option).distinct())) == {"ssp", "auto"}
    mismatched = demo.session.scalar(
        sa.select(sa.func.count()).select_from(PendingEnrollment)
        .join(Device, Device.id == PendingEnrollment.device_id)
        .where(sa.or_(Device.qr_code_id != PendingEnrollment.qr_code_id,
                      PendingEnrollment.used_at.is_(None))))
    assert mismatched == 0
    per_qr = demo.session.execute(
        sa.select(QrCode.usage_count, sa.func.count(PendingEnrollment.id))
        .join(PendingEnrollment, PendingEnrollment.qr_code_id == QrCode.id)
        .group_by(QrCode.id, QrCode.usage_count)).all()
    assert all(usage == count for usage, count in per_qr)
    # Live pending enrollments are not due: the first page view does not expire any.
    assert count_of(demo, PendingEnrollment, PendingEnrollment.state == "pending",
                    PendingEnrollment.expires_at < utcnow()) == 0


def test_review_page_view_otp_and_image_work_on_demo_qr_codes(admin_client, bulk_qr):
    extras = json.loads(bulk_qr.payload_text())[EXTRAS]
    assert extras["qr_id"] == bulk_qr.public_id and extras["otp"] == vault.decrypt(
        bulk_qr.otp_enc)
    assert summary(bulk_qr).version == bulk_qr.qr_version
    html = admin_client.get(f"/admin/qr-codes/{bulk_qr.public_id}").get_data(as_text=True)
    assert f"QR version {bulk_qr.qr_version}" in html and "View OTP" in html
    response = admin_client.post(f"/admin/qr-codes/{bulk_qr.public_id}/otp",
                                 data={"csrf_token": csrf_token_from(html)})
    assert f'<code id="otp-value">{extras["otp"]}</code>' in response.get_data(as_text=True)
    image = admin_client.get(f"/admin/qr-codes/{bulk_qr.public_id}/qr-code.svg")
    assert image.status_code == 200 and image.mimetype == "image/svg+xml"


def test_demo_data_command_refuses_a_database_with_data_unless_yes(app, db):
    runner = app.test_cli_runner()
    args = ["--devices", "200", "--qr-codes", "50", "--pending", "200", "--audit", "100"]
    first = runner.invoke(demo_data_command, args)
    assert first.exit_code == 0, first.output
    assert "QR codes: 50 rows" in first.output and "done in" in first.output
    assert LOCAL_USER_PASSWORD in first.output
    f = figures()
    assert (f.used, f.reserved) == (
        count_of(db, Device, Device.state.in_(("provisioning", "enrolled"))),
        count_of(db, PendingEnrollment, PendingEnrollment.state == "pending"))
    refused = runner.invoke(demo_data_command, args)
    assert refused.exit_code == 1 and "--yes" in refused.output
    assert count_of(db, QrCode) == 50
    again = runner.invoke(demo_data_command, args + ["--yes"])
    assert again.exit_code == 0, again.output
    assert count_of(db, QrCode) == 100 and count_of(db, Device) == 400
    f = figures()
    assert f.used == count_of(db, Device, Device.state.in_(("provisioning", "enrolled")))
    assert f.reserved == count_of(db, PendingEnrollment, PendingEnrollment.state == "pending")


def test_demo_data_command_refuses_sizes_that_cannot_go_together(app, db):
    result = app.test_cli_runner().invoke(demo_data_command, ["--qr-codes", "0",
                                                              "--devices", "5"])
    assert result.exit_code == 1 and "at least one QR code" in result.output
    assert count_of(db, Device) == 0


def test_pending_search_finds_user_email_and_qr_id_anywhere_in_any_case(admin_client, db,
                                                                         make_qr_code,
                                                                         make_user):
    smith = make_qr_code(user=make_user("asmith", email="alice.smith@example.com",
                                        display_name="Alice Smith"))
    other = make_qr_code(option="ssp", wifi_ssid="Lab_50%")
    ids = {smith.id: "smith", other.id: "other"}

    def found(query):
        html = admin_client.get(PENDING, query_string={"q": query}).get_data(as_text=True)
        return {ids[int(i)] for i in re.findall(r'<tr id="qr-code-(\d+)"', html)
                if int(i) in ids}
    assert found("SMITH") == {"smith"}              # display name, other case
    assert found("ALICE.SMITH@EXAMPLE") == {"smith"}  # email
    assert found("smit") == {"smith"}                # user name, part of it
    assert found(smith.public_id[2:9].swapcase()) >= {"smith"}  # QR ID, part of it
    assert found("lab_50%") == {"other"}             # LIKE's wildcards are plain text
    assert found("b_5") == {"other"} and found("%") == {"other"}
