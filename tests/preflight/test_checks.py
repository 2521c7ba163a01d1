"""Each preflight check against real servers on this machine: what it finds and its status."""
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal import preflight
from portal.audit.models import AuditEvent
from portal.enrollment.models import ZeroTouchEntry
from portal.enrollment.zero_touch import import_identifiers
from portal.mail.server import MailValues, save_mail_settings
from portal.preflight import Status
from portal.settings import sign_in
from portal.settings.companion import save_companion, seed_example_companion
from tests.mail.conftest import SMTP_PASSWORD, SMTP_USER
from tests.preflight.conftest import portal_over_https
from tests.support.smtp_sink import SmtpSink

COMPONENT = "com.acme.companion/.AdminReceiver"
CHECKSUM = "34Woo_T0UL8H4zoi2YX8CKfe0E8hh2vgOaXVDTl-nTo"  # not the quick start's example


def companion(download_url: str, checksum: str = CHECKSUM, component: str = COMPONENT):
    save_companion(component, download_url, checksum, True, "companion", actor="setup")


def run(check):
    return check(preflight.gather())


# Quick start

def test_quick_start_values_fail_and_no_download_is_tried(app, db, monkeypatch):
    seed_example_companion()
    inputs = preflight.gather()
    fetched = []
    monkeypatch.setattr(preflight, "fetch", lambda url, *args, **kwargs: fetched.append(url))
    quick, apk = preflight.check_quick_start(inputs), preflight.check_companion_apk(inputs)
    assert quick.status == Status.FAILURE and "example values" in quick.found
    assert "Admin → Companion" in quick.fix
    assert apk.status == Status.FAILURE and "quick start's example" in apk.found
    assert fetched == []  # nothing fetched from downloads.example.com


def test_own_companion_values_pass_the_quick_start_check(app, db):
    companion("https://downloads.acme.com/companion.apk")
    check = run(preflight.check_quick_start)
    assert check.status == Status.PASS and check.fix == ""


def test_no_companion_fails_the_companion_checks(app, db):
    inputs = preflight.gather()
    for check in (preflight.check_quick_start, preflight.check_download_url,
                  preflight.check_companion_apk):
        assert check(inputs).status == Status.FAILURE, check.__name__


# The public URL

@pytest.mark.parametrize("url, status, words", [
    ("http://127.0.0.1:5000", Status.FAILURE, "plain http"),
    ("http://provisioning.acme.com", Status.FAILURE, "plain http"),
    ("https://localhost:8443", Status.FAILURE, "localhost"),
    ("https://127.0.0.1", Status.FAILURE, "loopback"),
    ("https://[::1]:8443", Status.FAILURE, "loopback"),
    ("https://0.0.0.0", Status.FAILURE, "loopback"),
    ("https://10.1.2.3", Status.WARNING, "private address"),
    ("https://192.168.1.20:8443", Status.WARNING, "private address"),
    ("https://portal.corp", Status.WARNING, "only your own network"),
    ("https://portal", Status.WARNING, "only your own network"),
    ("https://provisioning.acme.com", Status.PASS, "provisioning.acme.com"),
])
def test_public_url_must_be_https_on_a_host_phones_reach(app, db, url, status, words):
    app.config["PORTAL_PUBLIC_URL"] = url
    check = run(preflight.check_public_url)
    assert (check.status, words in check.found) == (status, True), check
    assert bool(check.fix) == (status != Status.PASS)


def test_public_url_answers_healthz_over_https_with_the_test_ca(app, db, test_ca):
    ca, crt, key = test_ca
    app.config["TRUSTED_CA_FILE"] = ca
    with portal_over_https(app, (crt, key)) as url:
        app.config["PORTAL_PUBLIC_URL"] = url
        check = run(preflight.check_public_url_answers)
    assert check.status == Status.PASS, check
    assert f"{url}/healthz answered ok" in check.found


def test_a_certificate_the_phone_does_not_trust_fails(app, db, test_ca):
    """The same server without the test CA: a self-signed chain, as a phone sees it."""
    _ca, crt, key = test_ca
    with portal_over_https(app, (crt, key)) as url:
        app.config["PORTAL_PUBLIC_URL"] = url
        check = run(preflight.check_public_url_answers)
    assert check.status == Status.FAILURE
    assert "certificate is not trusted" in check.found and "public CA" in check.fix


def test_a_public_url_that_is_not_the_portal_fails(app, db, test_ca, https_files):
    app.config.update(TRUSTED_CA_FILE=test_ca[0], PORTAL_PUBLIC_URL=https_files.url)
    https_files.routes["/healthz"] = (200, b"<html>Welcome to nginx</html>")
    check = run(preflight.check_public_url_answers)
    assert check.status == Status.FAILURE and "not the portal's health check" in check.found


def test_a_public_url_nobody_listens_on_fails(app, db):
    app.config["PORTAL_PUBLIC_URL"] = "https://127.0.0.1:9"
    check = run(preflight.check_public_url_answers)
    assert check.status == Status.FAILURE and "connection refused" in check.found


def test_a_silent_server_fails_within_the_timeout(app, db, silent_server, monkeypatch):
    preflight_default_timeout = preflight.TIMEOUT
    monkeypatch.setattr(preflight, "TIMEOUT", 0.5)
    app.config["PORTAL_PUBLIC_URL"] = silent_server
    started = time.monotonic()
    check = run(preflight.check_public_url_answers)
    assert check.status == Status.FAILURE and "no answer" in check.found
    # Not a timing contract (a loaded machine may be slow): only far from the default timeout.
    assert time.monotonic() - started < preflight_default_timeout - 1


# The download URL (the APK's content: test_apk.py)

def test_download_over_plain_http_fails_without_downloading(app, db, http_files):
    """The console refuses an http download URL; COMPANION_DOWNLOAD_URL can still set one."""
    app.config.update(COMPANION_COMPONENT_NAME=COMPONENT, COMPANION_SIGNATURE_CHECKSUM=CHECKSUM,
                      COMPANION_DOWNLOAD_URL=http_files.url + "/companion.apk")
    inputs = preflight.gather()
    assert preflight.check_download_url(inputs).status == Status.FAILURE
    check = preflight.check_companion_apk(inputs)
    assert check.status == Status.FAILURE and "not https" in check.found


def test_a_download_url_that_answers_404_fails(app, db, test_ca, https_files):
    app.config["TRUSTED_CA_FILE"] = test_ca[0]
    companion(https_files.url + "/companion.apk")
    check = run(preflight.check_companion_apk)
    assert check.status == Status.FAILURE and "answered 404" in check.found
    assert "Admin → Companion" in check.fix


def test_a_download_redirected_to_plain_http_fails(app, db, test_ca, https_files, http_files):
    app.config["TRUSTED_CA_FILE"] = test_ca[0]
    http_files.routes["/companion.apk"] = (200, b"PK\x03\x04")
    https_files.routes["/companion.apk"] = (302, (http_files.url + "/companion.apk").encode())
    companion(https_files.url + "/companion.apk")
    check = run(preflight.check_companion_apk)
    assert check.status == Status.FAILURE
    assert f"redirected to {http_files.url}/companion.apk, which is not https" in check.found


def test_a_download_with_an_untrusted_certificate_fails(app, db, https_files):
    https_files.routes["/companion.apk"] = (200, b"PK\x03\x04")
    companion(https_files.url + "/companion.apk")
    check = run(preflight.check_companion_apk)
    assert check.status == Status.FAILURE and "certificate is not trusted" in check.found


def test_a_download_url_on_loopback_fails_and_on_a_company_name_warns(app, db):
    companion("https://127.0.0.1:8443/companion.apk")
    assert run(preflight.check_download_url).status == Status.FAILURE
    companion("https://files.intranet/companion.apk")
    assert run(preflight.check_download_url).status == Status.WARNING
    companion("https://downloads.acme.com/companion.apk")
    assert run(preflight.check_download_url).status == Status.PASS


# Mail

@pytest.fixture
def smtp(test_ca):
    _ca, crt, key = test_ca
    sink = SmtpSink(starttls_cert=(crt, key), require_starttls=True,
                    auth={SMTP_USER: SMTP_PASSWORD}).start()
    yield sink
    sink.stop()


def save_mail(app, smtp, test_ca, password):
    app.config["SMTP_CA_FILE"] = test_ca[0]
    save_mail_settings(MailValues(host="localhost", port=smtp.port, security="starttls",
                                  username=SMTP_USER, password=password,
                                  sender="portal@acme.com", timeout=2), actor="setup")


def test_a_mail_server_that_signs_us_in_passes_and_no_mail_is_sent(app, db, smtp, test_ca):
    save_mail(app, smtp, test_ca, SMTP_PASSWORD)
    check = run(preflight.check_mail)
    assert check.status == Status.PASS, check
    assert f"signed in as {SMTP_USER}" in check.found and "certificate verified" in check.found
    assert smtp.messages == []


def test_a_mail_server_that_refuses_the_password_fails_without_showing_it(app, db, smtp,
                                                                          test_ca):
    save_mail(app, smtp, test_ca, "wrong-password")
    check = run(preflight.check_mail)
    assert check.status == Status.FAILURE and check.found.startswith("Sign in:")
    assert "wrong-password" not in check.found + check.fix


def test_no_mail_server_is_a_warning(app, db):
    check = run(preflight.check_mail)
    assert check.status == Status.WARNING and "Outbox" in check.found


# Directories

def save_ldap(ldap_server, password):
    sign_in.save(sign_in.SignInValues(
        ldap_enabled=True, ldap_url=ldap_server.url_plain, ldap_security="none",
        ldap_bind_dn=ldap_server.service_dn, ldap_bind_password=password,
        ldap_base_dn=ldap_server.base_dn, ldap_user_attribute="uid"), actor="setup")


def test_the_directory_answers(app, db, ldap_server):
    save_ldap(ldap_server, ldap_server.service_password)
    check = run(preflight.check_directory)
    assert check.status == Status.PASS, check
    assert "User search" in check.found


def test_a_directory_that_refuses_the_service_account_fails(app, db, ldap_server):
    save_ldap(ldap_server, "wrong-service-secret")
    check = run(preflight.check_directory)
    assert check.status == Status.FAILURE and check.found.startswith("Service account bind")
    assert "wrong-service-secret" not in check.found
    assert "Test connection" in check.fix


def test_no_directory_and_no_azure_have_nothing_to_check(app, db):
    inputs = preflight.gather()
    assert preflight.check_directory(inputs).status == Status.PASS
    assert preflight.check_azure(inputs).status == Status.PASS


def test_an_azure_provider_that_does_not_answer_fails(app, db):
    sign_in.save(sign_in.SignInValues(azure_enabled=True, azure_client_id="portal",
                                      azure_authority="https://127.0.0.1:9/tenant",
                                      azure_client_secret="client-secret-1"), actor="setup")
    check = run(preflight.check_azure)
    assert check.status == Status.FAILURE and check.found.startswith("Discovery")
    assert "client-secret-1" not in check.found


# Zero-Touch / Knox, Google

def age_zero_touch_list(db, days: int):
    then = preflight.utcnow() - timedelta(days=days)
    db.session.execute(sa.update(ZeroTouchEntry).values(created_at=then))
    db.session.execute(sa.update(AuditEvent).where(AuditEvent.action == "zero_touch.import")
                       .values(occurred_at=then))


def test_a_zero_touch_list_older_than_30_days_warns(app, db):
    import_identifiers(["R58N000AAA", "R58N000BBB"], actor_type="operator", actor="setup")
    assert run(preflight.check_zero_touch).status == Status.PASS
    age_zero_touch_list(db, 31)
    check = run(preflight.check_zero_touch)
    assert check.status == Status.WARNING and "2 devices, last imported 31 days ago" in check.found


def test_a_fresh_import_of_known_devices_counts_as_an_update(app, db):
    import_identifiers(["R58N000AAA"], actor_type="operator", actor="setup")
    age_zero_touch_list(db, 40)
    import_identifiers(["R58N000AAA"], actor_type="operator", actor="setup")  # a duplicate
    assert run(preflight.check_zero_touch).status == Status.PASS


def test_google_approval_is_a_reminder_naming_the_package(app, db):
    companion("https://downloads.acme.com/companion.apk")
    check = run(preflight.check_google_approval)
    assert check.status == Status.WARNING and "com.acme.companion" in check.fix


# The whole run

def test_run_all_runs_the_checks_at_once(app, db, silent_server, monkeypatch):
    """Two checks that each wait for the timeout wait at the same time, not one after the
    other (counted, not timed: a loaded machine must not decide it)."""
    monkeypatch.setattr(preflight, "TIMEOUT", 1.0)
    fetch, lock = preflight.fetch, threading.Lock()
    waiting = {"now": 0, "most": 0}

    def counted(*args, **kwargs):
        with lock:
            waiting["now"] += 1
            waiting["most"] = max(waiting["most"], waiting["now"])
        try:
            return fetch(*args, **kwargs)
        finally:
            with lock:
                waiting["now"] -= 1
    monkeypatch.setattr(preflight, "fetch", counted)
    app.config["PORTAL_PUBLIC_URL"] = silent_server
    companion(silent_server + "/companion.apk")
    checks = preflight.run_all()
    assert [c.name for c in checks][:4] == ["Public URL", "Public URL answers", "Download URL",
                                            "Companion APK"]
    assert checks[1].status == checks[3].status == Status.FAILURE
    assert waiting["most"] == 2  # /healthz and the APK download, both waiting on the server


def test_run_and_save_keeps_the_run_audits_it_and_prunes_old_runs(app, db, monkeypatch):
    monkeypatch.setattr(preflight, "KEPT_RUNS", 2)
    seed_example_companion()
    runs = [preflight.run_and_save(actor_type="admin", actor="ada") for _ in range(3)]
    kept = db.session.scalars(sa.select(preflight.PreflightRun.id)).all()
    assert sorted(kept) == [runs[1].id, runs[2].id]
    assert preflight.last_run().id == runs[2].id
    assert runs[2].failures == sum(c.status == Status.FAILURE for c in runs[2].checks) >= 2
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "preflight.run")
                               .order_by(AuditEvent.id.desc())).first()
    assert event.actor == "ada" and event.outcome == "error"
    assert "Quick-start values" in event.details["failed"]


def test_every_check_reports_under_the_name_listed_for_it(app, db):
    """A check that times out is reported under its listed name: the two must agree."""
    seed_example_companion()
    assert [check.name for check in preflight.run_all()] == list(preflight.CHECKS.values())
