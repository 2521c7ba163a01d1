"""Secrets at rest: encryption, keyed hashes and constant-time comparison."""
import pytest

from portal import vault


def test_encrypted_secret_round_trips_and_is_not_plain_text(app):
    token = vault.encrypt("Q7x9K2m4Pz8w")
    assert "Q7x9K2m4Pz8w" not in token
    assert vault.decrypt(token) == "Q7x9K2m4Pz8w"
    assert vault.encrypt("Q7x9K2m4Pz8w") != token  # random IV: equal secrets look different


def test_tampered_ciphertext_is_refused(app):
    token = vault.encrypt("secret")
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(ValueError, match="cannot be decrypted"):
        vault.decrypt(tampered)


def test_a_different_secret_key_cannot_decrypt(app):
    token = vault.encrypt("secret")
    app.config["SECRET_KEY"] = "another-key-another-key-another-key-1234"
    with pytest.raises(ValueError):
        vault.decrypt(token)


def test_lookup_hash_is_keyed_and_per_purpose(app):
    import hashlib
    value = "Q7x9K2m4Pz8w"
    keyed = vault.lookup_hash(value)
    assert keyed != hashlib.sha256(value.encode()).hexdigest()
    assert keyed != vault.lookup_hash(value, purpose="otp")
    assert vault.matches(value, keyed)
    assert not vault.matches("Q7x9K2m4Pz8x", keyed)
