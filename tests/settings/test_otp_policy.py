"""OTP defaults (Admin → Self Service Portal): ranges enforced, row 1 upserted, audit recorded."""
import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.otp import OTP_ALPHABETS
from portal.settings.models import OtpPolicy
from portal.settings.otp_policy import OtpPolicyError, current, example_otp, save_otp_policy


def _events(db):
    return db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "settings.otp_policy")).all()


def _row(db):
    db.session.expire_all()
    policy = db.session.get(OtpPolicy, 1)
    return None if policy is None else (policy.length, policy.alphabet, policy.validity_hours)


def test_current_is_the_seeded_row_and_the_defaults_when_the_row_is_missing(db):
    assert (current().length, current().alphabet, current().validity_hours) == (12, "alnum", 72)
    db.session.execute(sa.delete(OtpPolicy))

    policy = current()

    assert (policy.length, policy.alphabet, policy.validity_hours) == (12, "alnum", 72)
    assert _row(db) is None  # the defaults are not written by reading them


def test_save_updates_row_1_and_records_the_admin_and_the_values(db):
    save_otp_policy(20, "digits", 24, actor="alice")

    assert _row(db) == (20, "digits", 24)
    [event] = _events(db)
    assert (event.actor_type, event.actor) == ("admin", "alice")
    assert event.details == {"length": 20, "alphabet": "digits", "validity_hours": 24}


def test_save_creates_row_1_when_it_is_missing_and_none_means_unlimited(db):
    db.session.execute(sa.delete(OtpPolicy))

    save_otp_policy(64, "upper", None, actor="alice")

    assert _row(db) == (64, "upper", None)


@pytest.mark.parametrize("length, alphabet, validity, field", [
    (5, "alnum", 72, "length"),
    (65, "alnum", 72, "length"),
    (True, "alnum", 72, "length"),
    (12, "hex", 72, "alphabet"),
    (12, "alnum", 0, "validity_hours"),
    (12, "alnum", 87601, "validity_hours"),
])
def test_out_of_range_values_are_refused_naming_the_field_and_nothing_is_written(
        db, length, alphabet, validity, field):
    with pytest.raises(OtpPolicyError) as raised:
        save_otp_policy(length, alphabet, validity, actor="alice")

    assert list(raised.value.errors) == [field]
    assert _row(db) == (12, "alnum", 72)
    assert _events(db) == []


def test_every_value_out_of_range_is_named_at_once(db):
    with pytest.raises(OtpPolicyError) as raised:
        save_otp_policy(5, "hex", 0, actor="alice")

    assert set(raised.value.errors) == {"length", "alphabet", "validity_hours"}
    assert _row(db) == (12, "alnum", 72)


def test_the_bounds_themselves_are_accepted(db):
    save_otp_policy(6, "digits", 1, actor="alice")
    assert _row(db) == (6, "digits", 1)
    save_otp_policy(64, "digits", 87600, actor="alice")
    assert _row(db) == (64, "digits", 87600)


@pytest.mark.parametrize("alphabet", sorted(OTP_ALPHABETS))
def test_example_otp_has_the_policy_length_and_only_its_characters(alphabet):
    otp = example_otp(OtpPolicy(length=30, alphabet=alphabet))

    assert len(otp) == 30
    assert set(otp) <= set(OTP_ALPHABETS[alphabet])
