"""Webhooks never go to the portal's own machine or to link-local addresses (the clouds'
instance metadata): refused when the endpoint is added, and before each attempt for what the
host name resolves to then. In-house private networks stay allowed."""
import pytest

from portal.webhooks.endpoints import validate
from tests.webhooks.test_console import PAGE, _add


@pytest.fixture
def no_loopback(app):
    app.config["WEBHOOK_ALLOW_LOOPBACK"] = False


@pytest.mark.parametrize("url, why", [
    ("https://127.0.0.1/hook", "127.0.0.1 is this machine's own loopback address"),
    ("https://127.8.9.10:8443/hook", "loopback"),
    ("https://[::1]/hook", "::1 is this machine's own loopback address"),
    ("https://[::ffff:127.0.0.1]/hook", "127.0.0.1 is this machine's own loopback"),
    ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("https://[fe80::1]/hook", "link-local"),
    ("https://0.0.0.0/hook", "0.0.0.0 is not the address of a host"),
    ("https://224.0.0.1/hook", "not the address of a host"),
    ("https://240.0.0.1/hook", "not the address of a host"),
])
def test_an_address_that_is_no_receiver_is_refused(app, no_loopback, url, why):
    problem = validate(url, "", ["device.enrolled"])["url"]
    assert problem.startswith("Events cannot be sent there:") and why in problem


@pytest.mark.parametrize("url", ["https://10.1.2.3/hook", "https://192.168.10.20:8443/in",
                                 "https://[fd00::5]/hook", "https://203.0.113.7/hook",
                                 "https://hooks.example.com/in"])
def test_in_house_and_public_receivers_are_fine(app, no_loopback, url):
    assert validate(url, "", ["device.enrolled"]) == {}


def test_link_local_is_refused_even_where_loopback_is_allowed(app):
    assert app.config["WEBHOOK_ALLOW_LOOPBACK"]
    assert validate("https://127.0.0.1/hook", "", ["device.enrolled"]) == {}
    assert "link-local" in validate("https://169.254.169.254/", "", ["device.enrolled"])["url"]


def test_the_console_says_so_beside_the_url_and_keeps_the_input(db, admin_client, no_loopback):
    response = _add(admin_client, url="https://169.254.169.254/latest", description="Kept")
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="url-error"' in html
    assert "169.254.169.254 is a link-local address" in html and 'value="Kept"' in html


def test_a_name_resolving_to_loopback_is_not_posted_to(app, receiver, make_endpoint, deliver):
    url = receiver.url.replace("127.0.0.1", "localhost")
    make_endpoint(url=url)               # added while allowed; then the rule applies
    app.config["WEBHOOK_ALLOW_LOOPBACK"] = False
    from portal.database import db
    from portal.webhooks.events import emit
    emit("device.enrolled", {"device": {"id": "dev1"}})
    db.session.commit()

    counts = deliver()

    assert (counts.delivered, counts.retrying) == (0, 1) and receiver.requests == []
    from tests.webhooks.conftest import deliveries
    [row] = deliveries()
    assert row.last_error.startswith("localhost resolves to ")
    assert "this machine's own loopback address" in row.last_error
    app.config["WEBHOOK_ALLOW_LOOPBACK"] = True
    assert deliver(minutes=600).delivered == 1 and len(receiver.requests) == 1


# The attempt connects to the address it checked: the name is resolved once (addresses.resolve,
# the seam below), and the POST goes to that answer while TLS and Host still name the host.

@pytest.fixture
def dns(monkeypatch):
    """The resolver seam, as production calls it: a name in `answers` gets its answers in turn
    (the last one repeats), any other name the real resolver's; every call is in `calls`."""
    from types import SimpleNamespace

    from portal.webhooks import addresses
    real, answers, calls = addresses.resolve, {}, []

    def resolve(host, port):
        calls.append((host, port))
        if host not in answers:
            return real(host, port)
        queue = answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]
    monkeypatch.setattr(addresses, "resolve", resolve)
    return SimpleNamespace(answers=answers, calls=calls)


@pytest.fixture
def second_receiver(webhook_tls, receiver):
    """Another receiver on the same port at 127.0.0.2: where a rebound name would lead."""
    from tests.webhooks.receiver import Receiver
    server = Receiver(webhook_tls, host="127.0.0.2", port=receiver.port).start()
    yield server
    server.stop()


def _emit():
    from portal.database import db
    from portal.webhooks.events import emit
    emit("device.enrolled", {"device": {"id": "dev1"}})
    db.session.commit()


def _last_error():
    from tests.webhooks.conftest import deliveries
    [row] = deliveries()
    return row.last_error


def test_a_name_is_delivered_with_the_name_in_sni_host_and_certificate(
        receiver, make_endpoint, deliver, dns):
    make_endpoint(url=f"https://localhost:{receiver.port}/hook")   # the real resolver
    _emit()

    assert deliver().delivered == 1
    [seen] = receiver.requests
    assert seen.verified and seen.headers["host"] == f"localhost:{receiver.port}"
    assert receiver.server_names == ["localhost"]
    assert dns.calls == [("localhost", receiver.port)]


def test_a_name_answering_differently_the_second_time_is_posted_to_the_first_answer(
        receiver, second_receiver, make_endpoint, deliver, dns):
    """DNS rebinding: the answer that was checked is the one connected to; the name is not
    resolved a second time (and nothing but the seam resolves receiver.test at all)."""
    from tests.webhooks.conftest import RECEIVER_NAME
    dns.answers[RECEIVER_NAME] = [["127.0.0.1"], ["127.0.0.2"]]
    make_endpoint(url=f"https://{RECEIVER_NAME}:{receiver.port}/hook")
    second_receiver.secret = receiver.secret   # it would verify and accept it, too
    _emit()

    assert deliver().delivered == 1

    assert len(receiver.requests) == 1 and second_receiver.requests == []
    assert dns.calls == [(RECEIVER_NAME, receiver.port)]
    assert receiver.requests[0].headers["host"] == f"{RECEIVER_NAME}:{receiver.port}"
    assert receiver.server_names == [RECEIVER_NAME]


def test_each_attempt_checks_and_connects_to_that_attempt_s_answer(
        app, receiver, second_receiver, make_endpoint, deliver, dns):
    from tests.webhooks.conftest import RECEIVER_NAME
    dns.answers[RECEIVER_NAME] = [["127.0.0.1"], ["127.0.0.2"]]
    receiver.fail_next = 1
    make_endpoint(url=f"https://{RECEIVER_NAME}:{receiver.port}/hook")
    second_receiver.secret = receiver.secret
    _emit()

    assert deliver().retrying == 1 and deliver(minutes=600).delivered == 1

    assert [s.status for s in receiver.requests] == [500]
    assert [s.status for s in second_receiver.requests] == [200]
    assert len(dns.calls) == 2


def test_a_name_that_rebinds_to_the_metadata_address_is_refused_before_connecting(
        receiver, make_endpoint, deliver, dns):
    from tests.webhooks.conftest import RECEIVER_NAME
    dns.answers[RECEIVER_NAME] = [["127.0.0.1", "169.254.169.254"]]
    make_endpoint(url=f"https://{RECEIVER_NAME}:{receiver.port}/hook")
    _emit()

    assert deliver().retrying == 1 and receiver.requests == []
    assert _last_error().startswith(f"{RECEIVER_NAME} resolves to 169.254.169.254; events are "
                                    "not sent there: 169.254.169.254 is a link-local address")


def test_a_name_the_certificate_does_not_name_is_refused_at_an_address_it_does(
        receiver, make_endpoint, deliver, dns):
    """The certificate covers 127.0.0.1 but not other.test: pinning the address must not
    turn the check for the URL's name into a check for the address."""
    dns.answers["other.test"] = [["127.0.0.1"]]
    make_endpoint(url=f"https://other.test:{receiver.port}/hook")
    _emit()

    assert deliver().retrying == 1 and receiver.requests == []
    error = _last_error()
    assert error.startswith("The receiver: its certificate is not trusted (Hostname mismatch")
    assert "'other.test'" in error


def test_an_address_that_refuses_at_once_is_followed_by_the_name_s_next_one(
        receiver, make_endpoint, deliver, dns):
    from tests.webhooks.conftest import RECEIVER_NAME
    dns.answers[RECEIVER_NAME] = [["127.0.0.3", "127.0.0.1"]]   # nothing listens on .3
    make_endpoint(url=f"https://{RECEIVER_NAME}:{receiver.port}/hook")
    _emit()

    assert deliver().delivered == 1 and len(receiver.requests) == 1
    assert dns.calls == [(RECEIVER_NAME, receiver.port)]


def test_when_no_address_answers_the_error_names_the_host_not_an_address(
        receiver, make_endpoint, deliver, dns):
    from tests.webhooks.conftest import RECEIVER_NAME
    dns.answers[RECEIVER_NAME] = [["127.0.0.3", "127.0.0.4"]]
    make_endpoint(url=f"https://{RECEIVER_NAME}:{receiver.port}/hook")
    _emit()

    assert deliver().retrying == 1
    assert _last_error() == (f"The receiver: connection refused by {RECEIVER_NAME}:"
                             f"{receiver.port}: nothing listens there. Start the server, or "
                             "correct the host and port.")


def test_a_name_that_does_not_resolve_says_so_in_the_portal_s_words(
        make_endpoint, deliver):
    make_endpoint(url="https://no-such-receiver.invalid/hook")
    _emit()

    assert deliver().retrying == 1
    assert _last_error() == ("The receiver: the host name no-such-receiver.invalid cannot be "
                             "resolved here. Check the host name and its DNS record.")


def test_plain_http_goes_to_the_checked_address_with_the_name_as_host(app, webhook_tls, dns):
    """Endpoints take https:// only; post() itself pins http:// the same way."""
    import base64
    import os

    from portal.webhooks.delivery import _Job, post
    from tests.webhooks.receiver import Receiver
    plain = Receiver(None).start()
    rebound = Receiver(None, host="127.0.0.2", port=plain.port).start()
    try:
        plain.secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        dns.answers["plain.test"] = [["127.0.0.1"], ["127.0.0.2"]]
        job = _Job(1, "t", 1, "msg_plain", f"http://plain.test:{plain.port}/hook",
                   (plain.secret,), '{"type": "test"}')

        assert post(job).ok
        assert rebound.requests == []
        [seen] = plain.requests
        assert seen.verified and seen.headers["host"] == f"plain.test:{plain.port}"
    finally:
        plain.stop()
        rebound.stop()
