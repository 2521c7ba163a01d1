"""Expiry and revocation end unused pending enrollments and return their licenses."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.audit.log import record
from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.enrollment.models import Device, PendingEnrollment
from portal.enrollment.pending import (AlreadyRevoked, current_figures, expire_due,
                                       pending_counts, revoke_qr_code)
from portal.licensing.seats import figures


def states(db, qr):
    return sorted(db.session.scalars(sa.select(PendingEnrollment.state)
                                     .where(PendingEnrollment.qr_code_id == qr.id)))


def use_one(db, qr):
    """Mark one pending enrollment used by a device, as a redemption will."""
    device = Device(public_id=f"dev-{qr.public_id}", qr_code_id=qr.id, user_id=qr.user_id,
                    serial_number="SN1", manufacturer="m", model="m", android_api_level=33,
                    token_hash=qr.public_id.ljust(64, "0"))
    db.session.add(device)
    db.session.flush()
    pending = db.session.scalars(sa.select(PendingEnrollment).where(
        PendingEnrollment.qr_code_id == qr.id, PendingEnrollment.state == "pending")).first()
    pending.state, pending.device_id = "used", device.id
    db.session.execute(sa.text("UPDATE license_pool SET reserved = reserved - 1, used = used + 1"))
    db.session.commit()


def test_expired_otp_ends_its_pending_enrollments_and_releases_their_licenses(
        db, make_qr_code):
    qr = make_qr_code("auto", licenses=10, usage_count=3, otp_validity=1)
    keep = make_qr_code("auto", usage_count=2, otp_validity="unlimited")
    use_one(db, qr)
    assert figures().reserved == 4 and figures().used == 1

    assert expire_due(now=utcnow() + timedelta(minutes=30)) == 0
    assert expire_due(now=utcnow() + timedelta(hours=2)) == 2

    assert states(db, qr) == ["expired", "expired", "used"]
    assert states(db, keep) == ["pending", "pending"]
    assert (figures().used, figures().reserved, figures().remaining) == (1, 2, 7)
    assert expire_due(now=utcnow() + timedelta(hours=2)) == 0  # each row ends once


@pytest.mark.parametrize("due", [False, True], ids=["nothing due", "something due"])
def test_what_the_caller_added_before_is_kept_whether_or_not_anything_was_due(
        db, make_qr_code, due):
    make_qr_code("auto", usage_count=1, otp_validity=1)
    record("test.added_before", actor_type="system")  # in the session, not committed yet
    later = timedelta(hours=2 if due else 0)

    assert expire_due(now=utcnow() + later) == (1 if due else 0)

    db.session.rollback()  # the caller gives up afterwards: what expire_due committed stays
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "test.added_before")) == 1


def let_otp_expire(db, qr, ago=timedelta(minutes=1)) -> None:
    db.session.execute(sa.update(PendingEnrollment)
                       .where(PendingEnrollment.qr_code_id == qr.id)
                       .values(expires_at=utcnow() - ago))
    db.session.commit()


def expiry_events(db) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "pending.expire"))


def test_license_figures_shown_to_admins_count_expired_otps_as_free_without_writing(
        db, make_qr_code):
    qr = make_qr_code("auto", licenses=5, usage_count=5, otp_validity=1)
    let_otp_expire(db, qr)
    assert figures().remaining == 0

    shown = current_figures()

    assert (shown.total, shown.used, shown.reserved, shown.remaining) == (5, 0, 0, 5)
    assert figures().reserved == 5 and states(db, qr) == ["pending"] * 5  # nothing written
    assert expiry_events(db) == 0 and not (db.session.new or db.session.dirty)
    assert expire_due() == 5 and current_figures() == shown  # what expiry then writes
    assert expiry_events(db) == 1


def test_counts_and_rows_show_an_expired_otp_as_expired_before_it_is_written(db, make_qr_code):
    from portal.provisioning.listing import state_counts
    qr = make_qr_code("auto", licenses=5, usage_count=3, otp_validity=1)
    use_one(db, qr)
    let_otp_expire(db, qr)

    assert pending_counts(qr) == {"pending": 0, "used": 1, "expired": 2, "revoked": 0}
    assert state_counts([qr.id]) == {qr.id: (0, 1, 2, 0)}
    rows = db.session.scalars(sa.select(PendingEnrollment)
                              .where(PendingEnrollment.qr_code_id == qr.id)).all()
    assert sorted(row.current_state for row in rows) == ["expired", "expired", "used"]
    assert states(db, qr) == ["pending", "pending", "used"]  # nothing written
    expire_due()
    assert pending_counts(qr) == {"pending": 0, "used": 1, "expired": 2, "revoked": 0}


def test_license_figures_count_only_reservations_whose_otp_has_expired(db, make_qr_code):
    due = make_qr_code("auto", licenses=10, usage_count=2, otp_validity=1)
    make_qr_code("auto", usage_count=3, otp_validity=1)  # valid for another hour
    make_qr_code("auto", usage_count=1, otp_validity="unlimited")  # never expires
    use_one(db, due)
    let_otp_expire(db, due)

    shown = current_figures()

    assert (shown.used, shown.reserved, shown.remaining) == (1, 4, 5)
    assert current_figures(now=utcnow() + timedelta(hours=2)).reserved == 1  # unlimited stays
    assert figures().reserved == 5


def test_license_figures_never_show_fewer_than_zero_reserved(db, make_qr_code):
    """Should the pool ever count fewer reservations than the rows hold, remaining still stays
    within the licenses that are not used."""
    qr = make_qr_code("auto", licenses=4, usage_count=2, otp_validity=1)
    let_otp_expire(db, qr)
    db.session.execute(sa.text("UPDATE license_pool SET reserved = 1"))
    db.session.commit()

    shown = current_figures()

    assert (shown.reserved, shown.remaining) == (0, 4)


def test_revoke_ends_unused_pending_enrollments_and_returns_their_licenses(
        db, make_qr_code, make_admin):
    admin = make_admin()
    qr = make_qr_code("auto", licenses=10, usage_count=4)
    use_one(db, qr)
    released = revoke_qr_code(qr, revoked_by=admin)
    assert released == 3
    assert states(db, qr) == ["revoked", "revoked", "revoked", "used"]
    assert (figures().used, figures().reserved) == (1, 0)
    assert qr.revoked_at is not None and qr.revoked_by_id == admin.id
    assert pending_counts(qr) == {"pending": 0, "used": 1, "expired": 0, "revoked": 3}


def test_revoking_twice_is_refused_and_releases_nothing_more(db, make_qr_code, make_admin):
    admin = make_admin()
    qr = make_qr_code("auto", licenses=10, usage_count=2)
    revoke_qr_code(qr, revoked_by=admin)
    with pytest.raises(AlreadyRevoked):
        revoke_qr_code(qr, revoked_by=admin)
    assert figures().reserved == 0 and figures().remaining == 10


def test_revoking_a_self_service_qr_marks_it_revoked(db, make_qr_code, make_admin):
    qr = make_qr_code("ssp")
    assert revoke_qr_code(qr, revoked_by=make_admin()) == 0
    assert qr.is_revoked
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "qr_code.revoke"))
    assert event.target == qr.public_id and event.details == {"released": 0}


def test_expire_command_ends_due_pending_enrollments(app, db, make_qr_code):
    qr = make_qr_code("auto", licenses=4, usage_count=2, otp_validity=1)
    db.session.execute(sa.update(PendingEnrollment).where(PendingEnrollment.qr_code_id == qr.id)
                       .values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["pending", "expire"])
    assert result.exit_code == 0 and "Expired 2 pending enrollments." in result.output
    assert figures().reserved == 0
    again = app.test_cli_runner().invoke(args=["pending", "expire"])
    assert "Expired 0 pending enrollments." in again.output
