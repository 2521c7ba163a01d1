"""redeem() directly: what a redemption costs in SQL statements, and the paths the contract
tests reach only through HTTP (docs/benchmarks.md has the timings these counts stand for)."""
import re
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.database import utcnow
from portal.enrollment import errors
from portal.enrollment.models import QrCode
from portal.enrollment.redeem import DeviceInfo, redeem
from portal.enrollment.tickets import issue_ticket
from portal.enrollment.zero_touch import import_identifiers
from tests.api.conftest import assert_figures_exact, otp_of

_STATEMENT = re.compile(r"\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM)\s+(\w+)", re.IGNORECASE)
_SKIPPED = re.compile(r"\s*(SAVEPOINT|RELEASE|ROLLBACK)", re.IGNORECASE)


@contextmanager
def statements(db):
    """The statements sent meanwhile, as "VERB table"; the tests' savepoints left out.

    Outside the tests each redemption also costs its BEGIN and its COMMIT."""
    sent = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        if _SKIPPED.match(statement):
            return
        verb, table = _STATEMENT.match(statement).groups()  # a SELECT's first column's table
        sent.append(f"{verb.split()[0].upper()} {table}")
    sa.event.listen(db.engine, "before_cursor_execute", listen)
    try:
        yield sent
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listen)


def tablet(serial="R58N123ABC", **overrides) -> DeviceInfo:
    return DeviceInfo(**{"serial_number": serial, "manufacturer": "samsung",
                         "model": "SM-X200", "android_api_level": 33, **overrides})


def auto(qr) -> dict:
    """What the device reads from an automatic QR, read before the statements are counted."""
    return {"qr_id": qr.public_id, "otp": otp_of(qr), "ticket": None}


def ssp(qr, ticket: str) -> dict:
    return {"qr_id": qr.public_id, "otp": None, "ticket": ticket}


def redeem_with(credentials: dict, device: DeviceInfo | None = None, **overrides):
    return redeem(**{**credentials, **overrides}, device=device or tablet(),
                  client_address="192.0.2.1")


# --- the statements of one redemption (fails if a change adds one) --------------------------

def test_a_new_device_costs_five_statements(db, make_qr_code):
    credentials = auto(make_qr_code("auto", usage_count=2))
    with statements(db) as sent:
        assert redeem_with(credentials).created
    assert sent == ["SELECT qr_codes", "INSERT devices", "UPDATE pending_enrollments",
                    "INSERT audit_events", "UPDATE license_pool"]


def test_a_retry_costs_three_statements(db, make_qr_code):
    credentials = auto(make_qr_code("auto", usage_count=2))
    redeem_with(credentials)
    with statements(db) as sent:
        assert not redeem_with(credentials).created
    assert sent == ["SELECT qr_codes", "UPDATE devices", "INSERT audit_events"]


def test_a_self_service_device_costs_six_statements(db, make_qr_code, make_user):
    qr = make_qr_code("ssp", licenses=5)
    credentials = ssp(qr, issue_ticket(qr, make_user()))
    with statements(db) as sent:
        assert redeem_with(credentials).created
    assert sent == ["SELECT qr_codes", "SELECT enrollment_tickets", "INSERT devices",
                    "UPDATE enrollment_tickets", "INSERT audit_events", "UPDATE license_pool"]


def test_a_wrong_otp_costs_two_statements(db, make_qr_code):
    credentials = auto(make_qr_code("auto"))
    with statements(db) as sent, pytest.raises(errors.InvalidCredentials):
        redeem_with(credentials, otp="wrong-otp")
    assert sent == ["SELECT qr_codes", "INSERT audit_events"]


# --- paths behind the combined look-up ------------------------------------------------------

def test_a_device_enrolled_before_the_otp_expired_may_still_ask_again(db, make_qr_code):
    qr = make_qr_code("auto", usage_count=2)
    credentials = auto(qr)
    first = redeem_with(credentials)
    db.session.execute(sa.update(QrCode).where(QrCode.id == qr.id)
                       .values(otp_expires_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()

    again = redeem_with(credentials)

    assert (again.device_id, again.created) == (first.device_id, False)
    assert again.token != first.token
    with pytest.raises(errors.Expired):
        redeem_with(credentials, tablet("ANOTHER"))
    assert_figures_exact(db)


def test_a_second_ticket_of_another_user_answers_with_the_device_s_own_user(db, make_qr_code,
                                                                           make_user):
    qr = make_qr_code("ssp", licenses=5)
    owner, other = make_user(display_name="Owner"), make_user(display_name="Other")
    first = redeem_with(ssp(qr, issue_ticket(qr, owner)))

    again = redeem_with(ssp(qr, issue_ticket(qr, other)))

    assert (again.device_id, again.created) == (first.device_id, False)
    assert again.user == first.user == {"username": owner.username, "display_name": "Owner",
                                        "email": owner.email}
    assert_figures_exact(db)


def test_the_zero_touch_list_matches_the_imei_or_the_serial_in_any_case(db, make_qr_code):
    import_identifiers(["R58N123ABC", "356938035643809"], actor_type="operator", actor="test")
    credentials = auto(make_qr_code("auto", usage_count=3))
    for device in (tablet("r58n123abc"), tablet("OTHER", imei="356938035643809")):
        with pytest.raises(errors.ZeroTouchConflict):
            redeem_with(credentials, device)
    assert redeem_with(credentials, tablet("OTHER", imei="490154203237518")).created
