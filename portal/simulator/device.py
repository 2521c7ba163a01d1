"""A simulated device: enrolls over real HTTP against the QR's server_url."""
import html
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

from portal.android.payload import PREFIX

TIMEOUT = 15


class SimulationError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Device:
    serial_number: str = "SIM0000001"
    imei: str | None = None
    manufacturer: str = "Simulated"
    model: str = "Companion Simulator"
    android_api_level: int = 34

    def as_json(self) -> dict:
        body = {"serial_number": self.serial_number, "manufacturer": self.manufacturer,
                "model": self.model, "android_api_level": self.android_api_level}
        if self.imei:
            body["imei"] = self.imei
        return body


@dataclass
class Outcome:
    device_id: str | None = None
    state: str | None = None
    user: dict | None = None
    log: list[str] = field(default_factory=list)


def enroll(payload: dict, device: Device, *, username: str | None = None,
           password: str | None = None, fail: bool = False,
           session: requests.Session | None = None) -> Outcome:
    """Redeem the QR as the Companion does, then report provisioning-complete."""
    extras = payload.get(PREFIX + "PROVISIONING_ADMIN_EXTRAS_BUNDLE") or {}
    server = extras.get("server_url", "").rstrip("/")
    http = session or requests.Session()
    outcome = Outcome()
    body = {"qr_id": extras.get("qr_id"), "device": device.as_json()}
    if extras.get("option") == "auto":
        body["otp"] = extras.get("otp")
    else:
        body["ticket"] = _ticket_from_portal(http, server, extras.get("qr_id"), username,
                                             password, outcome)
    answer = _api(http, "POST", f"{server}/api/v1/enrollments", json=body)
    outcome.log.append(f"Redeemed the QR code: {answer['state']} as device {answer['device_id']}")
    outcome.device_id, outcome.user = answer["device_id"], answer.get("user")
    result = {"result": "failure", "reason": "simulated failure"} if fail else {"result": "success"}
    done = _api(http, "POST", f"{server}/api/v1/devices/{answer['device_id']}/provisioning-complete",
                json=result, headers={"Authorization": f"Bearer {answer['device_token']}"})
    outcome.state = done["state"]
    outcome.log.append(f"Reported provisioning {result['result']}: the device is {done['state']}")
    return outcome


def _api(http, method, url, **kwargs) -> dict:
    try:
        response = http.request(method, url, timeout=TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        raise SimulationError("unreachable", f"{url} cannot be reached: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        raise SimulationError("bad_response", f"{url} answered {response.status_code} "
                                              "without JSON.") from None
    if response.status_code >= 400:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise SimulationError(error.get("code", f"http_{response.status_code}"),
                              error.get("message", "The server refused the request."))
    return body


def _ticket_from_portal(http, server, qr_id, username, password, outcome) -> str:
    """Sign in through the real /ssp pages, press Start and read the enrollment link."""
    if not username or not password:
        raise SimulationError("credentials_needed", "A Self Service Portal QR code needs "
                                                    "--username and --password.")
    page = _page(http, "GET", f"{server}/ssp/", params={"qr_id": qr_id})
    form = _form(page, "sign-in")
    page = _page(http, "POST", form["action"], data={
        "csrf_token": form["csrf_token"], "username": username, "password": password})
    if 'id="ssp-start"' not in page.text:
        raise SimulationError("sign_in_failed", "The portal refused the user name or password.")
    outcome.log.append(f"Signed in to the Self Service Portal as {username}")
    form = _form(page, "start")
    page = _page(http, "POST", form["action"], data={"csrf_token": form["csrf_token"]})
    match = re.search(r'<a id="enrollment-link"[^>]*href="([^"]+)"', page.text)
    if not match:
        raise SimulationError("no_enrollment_link", "The portal showed no enrollment link.")
    link = html.unescape(match.group(1))
    outcome.log.append("Pressed Start and followed the enrollment link")
    return parse_qs(urlsplit(link).query)["ticket"][0]


def _page(http, method, url, **kwargs):
    try:
        response = http.request(method, url, timeout=TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        raise SimulationError("unreachable", f"{url} cannot be reached: {exc}") from None
    if response.status_code in (403, 404):
        raise SimulationError("portal_refused", f"The portal answered {response.status_code} "
                                                f"for {url}.")
    return response


def _form(page, purpose: str) -> dict:
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    if not action or not token:
        raise SimulationError("unexpected_page", f"The portal's {purpose} page has no form.")
    return {"action": urljoin(page.url, html.unescape(action.group(1))),
            "csrf_token": token.group(1)}
