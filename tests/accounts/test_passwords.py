"""Argon2id password hashes: production strength outside the test profile, no enumeration."""
from portal.accounts.passwords import hash_password, verify_password


def test_production_hashes_use_argon2id_with_the_rfc_9106_low_memory_profile():
    password_hash = hash_password("correct horse")  # no app context: the production profile
    assert password_hash.startswith("$argon2id$")
    assert "m=65536,t=3,p=4" in password_hash
    assert verify_password(password_hash, "correct horse")
    assert not verify_password(password_hash, "correct horsE")


def test_a_missing_account_never_verifies_whatever_the_password():
    assert not verify_password(None, "not-a-real-password")
    assert not verify_password("", "anything")
    assert not verify_password("not-a-hash", "anything")
