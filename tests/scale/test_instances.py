"""Two gunicorn servers on one PostgreSQL database and one Redis behave as one portal (issue 7,
part 1): a Usage Count, the licenses, a ticket, the sign-in sessions and the throttling of
failed attempts hold across them, whichever instance the load balancer picks.
"""
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.api.conftest import altered
from tests.concurrency.test_redeem_race import Burst, Call, outcomes
from tests.scale.conftest import (TIMEOUT, Browser, contract_error, device, press_start, redeem,
                                  sign_in_admin, sign_in_ssp)


def round_robin(urls: list[str], bodies: list[dict]) -> Burst:
    """POST /api/v1/enrollments for each body, spread over the instances in turn. (Burst joins
    its URL and each call's path: with an empty URL, the path names the instance.)"""
    return Burst("", [Call(f"{urls[i % len(urls)]}/api/v1/enrollments", body)
                      for i, body in enumerate(bodies)])


def device_status(instance: str, answer: dict) -> int:
    response = requests.get(f"{instance}/api/v1/devices/{answer['device_id']}", timeout=TIMEOUT,
                            headers={"Authorization": f"Bearer {answer['device_token']}"})
    return response.status_code


def test_a_usage_count_is_spent_once_across_instances(deployment):
    deployment.leave_remaining(30)
    qr_code = deployment.create_qr_code("auto", usage_count=30)
    before = deployment.check_counters()
    assert before["remaining"] == 0
    burst = round_robin(deployment.urls, [
        {"qr_id": qr_code["qr_id"], "otp": qr_code["otp"], "device": device(f"SPREAD{i:03d}")}
        for i in range(90)])
    answers = burst.run(check=deployment.check_counters)

    assert outcomes(answers) == {"201": 30, "409 usage_exhausted": 60}, outcomes(answers)
    assert len({body["device_id"] for status, body in answers if status == 201}) == 30
    figures = deployment.check_counters(qr_code)
    assert figures["qr_devices"] == figures["qr_active_devices"] == 30, figures
    assert figures["qr_used"] == figures["qr_used_distinct_devices"] == 30, figures
    assert figures["qr_pending"] == 0, figures
    assert (figures["used"] - before["used"], before["reserved"] - figures["reserved"],
            figures["remaining"]) == (30, 30, 0), (before, figures)
    assert figures["qr_redeem_events"] == 90, figures
    created = Counter(i % 2 for i, (status, _) in enumerate(answers) if status == 201)
    print(burst.report("usage count 30 over two instances")
          + f"; 201s from A/B: {created[0]}/{created[1]}")


def test_a_ticket_from_one_instance_is_spent_once_on_all(deployment):
    a, b = deployment.urls
    deployment.leave_remaining(1)
    qr_code = deployment.create_qr_code("ssp")
    browser = Browser(deployment.address())
    assert sign_in_ssp(browser, a, qr_code["qr_id"], deployment.username).status_code == 303
    ticket = press_start(browser, a, qr_code["qr_id"])
    body = {"qr_id": qr_code["qr_id"], "ticket": ticket, "device": device("TICKET0001")}

    phone = deployment.address()
    first = redeem(b, body, address=phone)
    assert first.status_code == 201, first.text
    contract_error(redeem(a, {**body, "device": device("TICKET0002")},
                          address=deployment.address()), 401, "invalid_credentials")
    # The same device asking instance A again (its answer was lost): the same device, a new
    # token, and the token B gave out stops working on B too.
    again = redeem(a, body, address=phone)
    assert again.status_code == 200, again.text
    assert again.json()["device_id"] == first.json()["device_id"]
    assert (device_status(b, first.json()), device_status(b, again.json())) == (401, 200)
    figures = deployment.check_counters(qr_code)
    assert figures["qr_tickets_used"] == figures["qr_devices"] == 1, figures
    assert figures["remaining"] == 0, figures


def test_an_admin_session_from_one_instance_holds_on_the_other(deployment):
    a, b = deployment.urls
    admin = deployment.admins[0]
    browser = Browser(deployment.address())
    signed_in = sign_in_admin(browser, a, admin)
    assert signed_in.status_code == 303, signed_in.text[:500]

    page = browser.get(f"{b}/admin/devices/pending", allow_redirects=False, timeout=TIMEOUT)
    assert page.status_code == 200 and admin in page.text, page.status_code
    # A form that A rendered is accepted by B: the CSRF token is signed with the shared key.
    signed_out = browser.submit(f"{b}/admin/logout", {}, token_from=f"{a}/admin/devices/pending")
    assert signed_out.status_code == 303, signed_out.text[:500]
    assert signed_out.headers["Location"].endswith("/admin/login")
    page = browser.get(f"{a}/admin/devices/pending", allow_redirects=False, timeout=TIMEOUT)
    assert page.status_code == 302 and "/admin/login" in page.headers["Location"]


def test_a_self_service_session_from_one_instance_holds_on_the_other(deployment):
    a, b = deployment.urls
    deployment.leave_remaining(1)
    qr_code = deployment.create_qr_code("ssp")
    browser = Browser(deployment.address())
    assert sign_in_ssp(browser, a, qr_code["qr_id"], deployment.username).status_code == 303

    page = browser.get(f"{b}/ssp/start?qr_id={qr_code['qr_id']}", allow_redirects=False,
                       timeout=TIMEOUT)
    assert page.status_code == 200 and 'id="ssp-start"' in page.text, page.status_code
    ticket = press_start(browser, b, qr_code["qr_id"])
    answer = redeem(a, {"qr_id": qr_code["qr_id"], "ticket": ticket,
                        "device": device("SESSION001")}, address=deployment.address())
    assert answer.status_code == 201, answer.text
    assert answer.json()["user"]["username"] == deployment.username
    deployment.check_counters(qr_code)


def test_failed_attempts_from_one_address_count_on_every_instance(deployment):
    a, b = deployment.urls
    deployment.leave_remaining(1)
    qr_code = deployment.create_qr_code("auto", usage_count=1)
    wrong = {"qr_id": qr_code["qr_id"], "otp": altered(qr_code["otp"]),
             "device": device("GUESSER001")}
    address = deployment.address()

    # API_FAILED_ATTEMPTS_LIMIT is 6 per 10 minutes: three wrong OTPs on each instance.
    assert [redeem(url, wrong, address=address).status_code for url in (a, b) * 3] == [401] * 6
    for url in (a, b):
        refused = redeem(url, wrong, address=address)
        contract_error(refused, 429, "rate_limited")
        assert int(refused.headers["Retry-After"]) > 0
    # Another client behind the same load balancer is not throttled.
    contract_error(redeem(b, wrong, address=deployment.address()), 401, "invalid_credentials")


def test_failed_admin_sign_ins_for_one_name_count_on_every_instance(deployment):
    a, b = deployment.urls
    # Throttled per user name and network (these addresses share one /24), whether the admin
    # exists or not.
    name = f"nobody-{deployment.run}"
    statuses = [sign_in_admin(Browser(deployment.address()), url, name).status_code
                for url in (a, b, a, b, a)]
    assert statuses == [422] * 5  # ADMIN_LOGIN_LIMIT: 5 per 5 minutes (the default)
    assert [sign_in_admin(Browser(deployment.address()), url, name).status_code
            for url in (b, a)] == [429, 429]


def test_two_admins_on_two_instances_never_reserve_more_than_remain(deployment):
    admins = []
    for url, name in zip(deployment.urls, deployment.admins):
        browser = Browser(deployment.address())
        assert sign_in_admin(browser, url, name).status_code == 303
        admins.append((browser, url))
    form = {"option": "auto", "user_type": "local", "username": deployment.username,
            "lang": "en", "usage_count": "6", "network": "mobile"}

    for _ in range(3):
        deployment.leave_remaining(6)
        before = deployment.check_counters()
        tokens = [browser.form_token(f"{url}/admin/devices/pending/new")
                  for browser, url in admins]
        start = threading.Barrier(len(admins))

        def save(index):
            browser, url = admins[index]
            start.wait(TIMEOUT)
            return browser.post(f"{url}/admin/devices/pending", allow_redirects=False,
                                data={"csrf_token": tokens[index], **form}, timeout=TIMEOUT)
        with ThreadPoolExecutor(len(admins)) as pool:
            answers = list(pool.map(save, range(len(admins))))

        assert sorted(answer.status_code for answer in answers) == [303, 422], answers
        refused = next(answer for answer in answers if answer.status_code == 422)
        assert "No licenses remain" in refused.text, refused.text
        figures = deployment.check_counters()
        assert (figures["reserved"] - before["reserved"], figures["remaining"]) == (6, 0), \
            (before, figures)
