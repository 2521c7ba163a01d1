"""The Pending search: anywhere in the QR ID, SSID, alternative address or the user's name or
email, case-blind; on SQLite through the trigram FTS5 tables that triggers keep current."""
import pytest
import sqlalchemy as sa

from portal.database import db as _db
from portal.enrollment.models import QrCode
from portal.provisioning.listing import qr_code_keys


def _found(query: str) -> set[str]:
    keys = _db.session.execute(qr_code_keys(query)).all()
    ids = [key.id for key in keys]
    return set(_db.session.scalars(sa.select(QrCode.wifi_ssid).where(QrCode.id.in_(ids))))


@pytest.fixture
def codes(make_qr_code, make_user):
    jurg = make_user("juerg", display_name="Jürg Müller", email="jm@schule.example")
    make_qr_code("auto", user=jurg, wifi_ssid="Aula-WLAN")
    make_qr_code("ssp", wifi_ssid="Lehrer_Zimmer", alternative_email="it@schule.example")
    make_qr_code("ssp", wifi_ssid='Quote"Net')
    return jurg


@pytest.mark.parametrize("query,expected", [
    ("aula", {"Aula-WLAN"}), ("WLAN", {"Aula-WLAN"}),              # case-blind
    ("Müller", {"Aula-WLAN"}), ("jm@schule", {"Aula-WLAN"}),       # the user's name, email
    ("r_z", {"Lehrer_Zimmer"}), ("it@schule", {"Lehrer_Zimmer"}),  # _ is no wildcard
    ('e"N', {'Quote"Net'}), ("schule.example", {"Aula-WLAN", "Lehrer_Zimmer"}),
    ("nowhere", set()), ("%", set()),
    # two characters: the plain scan (@schule); not letters, which a random QR ID may hold
    ("@s", {"Aula-WLAN", "Lehrer_Zimmer"}),
])
def test_search_finds_substrings_of_every_searched_column(db, codes, query, expected):
    assert _found(query) == expected


def test_the_search_follows_changes_and_deletions(db, codes):
    qr = db.session.scalar(sa.select(QrCode).where(QrCode.wifi_ssid == "Aula-WLAN"))
    qr.wifi_ssid = "Turnhalle"
    codes.display_name = "Jürg Renamed"
    db.session.commit()
    assert _found("aula") == set() and _found("Turnhalle") == {"Turnhalle"}
    assert _found("Renamed") == {"Turnhalle"} and _found("Müller") == set()


@pytest.mark.parametrize("query,expected", [
    ('"Ne', {'Quote"Net'}), ('"abc', set()), ('ote"', {'Quote"Net'}), ("a-W", {"Aula-WLAN"}),
    ("NEAR(", set()), ("a AND", set()), ("***", set()), ("^Au", set()), ("-WLAN", {"Aula-WLAN"}),
    ("abc\x00def", set()), ("\x00", set()), ("Aula\x00", set()),
])
def test_a_search_is_only_text_never_a_query_language(db, codes, query, expected):
    """FTS5's quotes and operators are characters to find; NUL finds nothing (FTS5 once
    failed with "unterminated string", logged as "database unavailable", and SQLite's LIKE
    matched every row)."""
    assert _found(query) == expected
