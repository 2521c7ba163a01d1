"""Sign-in throttling that the sign-in tests do not cover already: it holds across server
processes that share Redis, and neither a user name's spelling nor a forged X-Forwarded-For
gets an attacker a fresh allowance."""
import os
import secrets

import pytest
import redis

from portal import create_app
from portal.extensions import limiter
from tests.conftest import _config, sign_in
from tests.selfservice.conftest import post_sign_in

REDIS_URL = os.environ.get("TEST_SECURITY_REDIS_URL", "redis://127.0.0.1:6379/15")
LIMITS = {"ADMIN_LOGIN_LIMIT": "3 per minute", "SSP_SIGN_IN_LIMIT": "3 per minute"}


class SharedRedis:
    """Redis database 15 as this test's alone: its keys carry a prefix of its own. (Another
    test worker uses the same database at the same time, so flushing it would wipe that
    test's counters between its third and fourth attempt.)"""

    def __init__(self):
        self.store = redis.Redis.from_url(REDIS_URL)
        self.prefix = "portal-test-" + secrets.token_hex(4)

    def keys(self, pattern: str) -> list[bytes]:
        return [key for key in self.store.keys(pattern) if self.prefix.encode() in key]

    def delete_own_keys(self) -> None:
        own = self.store.keys(f"*{self.prefix}*")
        if own:
            self.store.delete(*own)


def _forget_key_prefix() -> None:
    # The one limiter keeps the first prefix any app gave it (Flask-Limiter's init_app keeps a
    # prefix it has): each test's apps are to use the test's own.
    limiter._key_prefix = ""


@pytest.fixture
def shared_redis():
    _forget_key_prefix()
    shared = SharedRedis()
    yield shared
    shared.delete_own_keys()
    limiter.reset()
    _forget_key_prefix()


def server_process(database_uri, tmp_path, redis_url, prefix):
    """A second app built as another gunicorn worker would build it: REDIS_URL only.
    Building it re-binds the shared limiter, whose memory (without Redis) starts empty."""
    return create_app(_config(database_uri, tmp_path, REDIS_URL=redis_url,
                              RATELIMIT_KEY_PREFIX=prefix, **LIMITS))


def _fail_admin(app):
    return sign_in(app.test_client(), "target-admin", password="wrong-password-1").status_code


def _fail_end_user(app, qr_id, username="target-user"):
    return post_sign_in(app.test_client(), qr_id, username, "wrong-password-1").status


@pytest.mark.parametrize("storage, fourth", [(REDIS_URL, 429), (None, 422)],
                         ids=["redis", "memory"])
def test_admin_failures_in_one_process_throttle_another_sharing_redis(
        database_uri, tmp_path, db, shared_redis, storage, fourth):
    first = server_process(database_uri, tmp_path, storage, shared_redis.prefix)
    assert [_fail_admin(first) for _ in range(3)] == [422] * 3

    second = server_process(database_uri, tmp_path, storage, shared_redis.prefix)

    # Memory storage is the control: it shows what Redis is there for.
    assert _fail_admin(second) == fourth
    assert bool(shared_redis.keys("*admin-login:target-admin*")) == (storage is not None)


def test_end_user_failures_in_one_process_throttle_another_sharing_redis(
        database_uri, tmp_path, db, shared_redis, make_qr_code):
    qr_id = make_qr_code("ssp").public_id
    first = server_process(database_uri, tmp_path, REDIS_URL, shared_redis.prefix)
    assert [_fail_end_user(first, qr_id) for _ in range(3)] == [422] * 3

    second = server_process(database_uri, tmp_path, REDIS_URL, shared_redis.prefix)

    assert _fail_end_user(second, qr_id) == 429
    assert shared_redis.keys("*ssp-sign-in:target-user*")


@pytest.mark.parametrize("config_overrides", [LIMITS], indirect=True)
def test_the_user_name_limit_ignores_case_and_spaces(app, db, ssp_qr_id):
    spellings = ["Target-Admin", " target-admin", "TARGET-ADMIN "]
    for spelling in spellings:
        assert sign_in(app.test_client(), spelling, password="wrong-1").status_code == 422
        assert _fail_end_user(app, ssp_qr_id, spelling) == 422

    assert _fail_admin(app) == 429
    assert _fail_end_user(app, ssp_qr_id, "target-admin") == 429


@pytest.mark.parametrize("config_overrides", [{"ADMIN_LOGIN_IP_LIMIT": "3 per minute",
                                                "SSP_SIGN_IN_IP_LIMIT": "3 per minute"}],
                         indirect=True)
def test_a_forged_x_forwarded_for_does_not_reset_the_address_limit(app, db, ssp_qr_id):
    def forged(i):
        return {"X-Forwarded-For": f"203.0.113.{i}"}

    admin = [sign_in(_client(app, forged(i)), f"guess{i}", password="wrong-1").status_code
             for i in range(4)]
    portal = [post_sign_in(_client(app, forged(i)), ssp_qr_id, f"guess{i}", "wrong-1").status
              for i in range(4)]

    assert admin == [422, 422, 422, 429]
    assert portal == [422, 422, 422, 429]


def _client(app, headers):
    client = app.test_client()
    client.environ_base.update({f"HTTP_{k.upper().replace('-', '_')}": v
                                for k, v in headers.items()})
    return client


@pytest.fixture
def ssp_qr_id(make_qr_code):
    return make_qr_code("ssp", licenses=5).public_id
