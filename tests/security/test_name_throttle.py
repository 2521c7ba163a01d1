"""Throttling by user name cannot lock a person out from everywhere: wrong passwords for a name
refuse that name from the network they came from, and the right password still gets through
from any other network. Driven over real sockets from several loopback source addresses
(127.0.0.0/8 is all loopback: 127.0.0.x is one /24 network, 127.0.5.x another)."""
from dataclasses import dataclass

import pytest
import requests
from requests.adapters import HTTPAdapter

from portal.accounts import lockout
from portal.accounts.admins import create_admin
from portal.accounts.users import add_local_user
from portal.database import db
from portal.extensions import limiter
from portal.licensing.seats import set_total
from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
from portal.settings.companion import seed_example_companion
from portal.settings.models import SignInSettings
from tests.conftest import csrf_token_from
from tests.support.live import live_app, serving

PASSWORD = "the-right-password-1"
LIMITS = {"ADMIN_LOGIN_LIMIT": "3 per minute", "SSP_SIGN_IN_LIMIT": "3 per minute",
          "ADMIN_LOGIN_IP_LIMIT": "1000 per minute", "SSP_SIGN_IN_IP_LIMIT": "1000 per minute"}


class _FromAddress(HTTPAdapter):
    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def browser_at(address: str) -> requests.Session:
    """A browser whose connections come from `address` (a loopback address of its own)."""
    session = requests.Session()
    session.mount("http://", _FromAddress(address))
    return session


@dataclass
class Portal:
    app: object
    url: str
    qr_id: str

    def sign_in(self, who: str, address: str, password: str) -> int:
        """Sign in as the admin (who="admin") or the end user ("user") named `who`'s account
        from `address`; the status of the POST (303 signed in, 422 wrong, 429 throttled)."""
        browser = browser_at(address)
        if who == "admin":
            page, target, name = "/admin/login", "/admin/login", "ada"
        else:
            page = f"/ssp/?qr_id={self.qr_id}"
            target, name = f"/ssp/sign-in?qr_id={self.qr_id}", "pupil"
        token = csrf_token_from(browser.get(self.url + page, timeout=10).text)
        response = browser.post(self.url + target, allow_redirects=False, timeout=10, data={
            "csrf_token": token, "username": name, "password": password})
        return response.status_code

    def locked_out(self, who: str) -> bool:
        with self.app.app_context():
            if who == "admin":
                return lockout.is_locked_out(lockout.ADMIN, "ada")
            return lockout.is_locked_out(lockout.USER, "pupil")

    def unlock(self, who: str) -> None:
        with self.app.app_context():
            throttle, name = (lockout.ADMIN, "ada") if who == "admin" else (lockout.USER, "pupil")
            lockout.unlock(throttle, name, kind=who, actor="helpdesk")


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    app = live_app(tmp_path_factory.mktemp("name-throttle"), "name_throttle", **LIMITS)
    with app.app_context():
        seed_example_companion()
        set_total(10)
        create_admin("ada", "ada@example.com", PASSWORD)
        add_local_user("pupil", "pupil@example.com", PASSWORD)
        db.session.merge(SignInSettings(id=1, local_enabled=True))
        db.session.commit()
        qr_id = create_qr_code(QrCodeRequest(option="ssp", lang="en", network="mobile"),
                               created_by=None, server_url="https://portal.test").public_id
    with serving(app) as url:
        yield Portal(app, url, qr_id)


@pytest.fixture
def fresh(portal):
    with portal.app.app_context():
        limiter.reset()
    yield portal
    with portal.app.app_context():
        limiter.reset()


@pytest.mark.parametrize("who", ["admin", "user"])
def test_failures_from_one_network_do_not_refuse_the_right_password_from_another(fresh, who):
    attacker = "127.0.0.2"
    assert [fresh.sign_in(who, attacker, "wrong-guess") for _ in range(3)] == [422] * 3
    assert fresh.sign_in(who, attacker, "wrong-guess") == 429
    assert fresh.locked_out(who)

    # The name is refused where the failures came from: the address and its /24 network...
    assert fresh.sign_in(who, attacker, PASSWORD) == 429
    assert fresh.sign_in(who, "127.0.0.77", PASSWORD) == 429
    # ...and not from an address on another network that has not failed.
    assert fresh.sign_in(who, "127.0.5.9", PASSWORD) == 303

    # Unlock forgets the failures on every network.
    fresh.unlock(who)
    assert not fresh.locked_out(who)
    assert fresh.sign_in(who, attacker, PASSWORD) == 303


@pytest.mark.parametrize("who", ["admin", "user"])
def test_failures_spread_over_many_networks_lock_out_none_of_them_for_the_right_password(
        fresh, who):
    networks = [f"127.{n}.0.1" for n in range(10, 20)]  # ten /24 networks, one failure each
    assert [fresh.sign_in(who, address, "wrong-guess") for address in networks] == [422] * 10
    assert fresh.locked_out(who)  # the console sees that the name is under attack

    assert fresh.sign_in(who, "127.0.0.2", PASSWORD) == 303
    assert fresh.sign_in(who, networks[0], PASSWORD) == 303  # one failure is within the limit


@pytest.mark.parametrize("who", ["admin", "user"])
def test_each_network_still_gets_only_the_limit_of_guesses_for_the_name(fresh, who):
    for network in ("127.0.30.1", "127.0.31.1"):
        assert [fresh.sign_in(who, network, "wrong-guess") for _ in range(4)] == \
            [422, 422, 422, 429]
        assert fresh.sign_in(who, network, PASSWORD) == 429
