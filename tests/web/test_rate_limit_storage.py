"""Throttling state lives in Redis when REDIS_URL is set, so every process shares it."""
import os
import secrets

import redis

from config import TestConfig
from portal import create_app
from portal.extensions import limiter

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _app(tmp_path, database_uri, prefix):
    config = type("RedisConfig", (TestConfig,), {
        "SQLALCHEMY_DATABASE_URI": database_uri, "INSTANCE_PATH": str(tmp_path),
        "REDIS_URL": REDIS_URL, "RATELIMIT_STORAGE_URI": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": prefix, "API_FAILED_ATTEMPTS_LIMIT": "3 per minute"})
    return create_app(config)


def _fail(app):
    return app.test_client().post("/api/v1/enrollments", json={
        "qr_id": "no-such-qr-code", "otp": "wrong",
        "device": {"serial_number": "R1", "manufacturer": "m", "model": "m",
                   "android_api_level": 33}})


def test_failed_attempts_counted_in_one_process_throttle_another(tmp_path, database_uri, db):
    # (`db`: the refusals' audit rows go into the test's transaction, rolled back afterwards,
    # not into the database the next tests count rows in.)
    prefix = "portal-test-" + secrets.token_hex(4)
    limiter._key_prefix = ""  # the one limiter keeps the first prefix any app gave it
    first = _app(tmp_path, database_uri, prefix)
    assert [_fail(first).status_code for _ in range(3)] == [401, 401, 401]
    # A second app (another worker) starts with an empty memory, but reads the same Redis.
    second = _app(tmp_path, database_uri, prefix)
    response = _fail(second)
    assert response.status_code == 429
    assert response.get_json()["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) > 0
    keys = redis.Redis.from_url(REDIS_URL).keys(f"*{prefix}*")
    assert keys, "no throttling state in Redis"
    limiter.reset()
    limiter._key_prefix = ""
