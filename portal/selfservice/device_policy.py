"""The Self Service Portal for QR codes managed by Android Device Policy (Google's sign-in URL
flow): Android Device Policy opens /ssp/?qr_id=…&provisioningInfo=provisioningInfo/<id>; the
id waits in the session (a GET writes no row) through the sign-in (Local, Active Directory,
Azure AD); Start asks Google for a one-time token and sends the device on to Google's
enrollment URL (?et=<token>)."""
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

from flask import current_app, render_template, session
from flask_babel import format_timedelta
from flask_babel import gettext as _

from portal import throttle
from portal.enrollment.models import QrCode
from portal.provisioning.google_sign_in import SignInFlowRefused, provisioning_info_name
from portal.vocabulary import Management
from portal.web.headers import CONTENT_SECURITY_POLICY

SESSION_KEY = "ssp_provisioning_info"  # {"qr": public id, "name": "provisioningInfo/<id>"}
# Each Start asks Google for a token: so many per signed-in user, and per address.
TOKEN_LIMITS = ("SSP_DEVICE_POLICY_LIMIT", "user"), ("SSP_DEVICE_POLICY_IP_LIMIT", "address")


def is_device_policy(qr_code: QrCode) -> bool:
    return qr_code.management == Management.ADP


def remember(qr_code: QrCode, value: str | None) -> bool:
    """Keep the provisioningInfo Android Device Policy added to the URL (in the session
    cookie only); False when the value cannot be one (an edited URL)."""
    name = provisioning_info_name(value)
    if name is None:
        return False
    session[SESSION_KEY] = {"qr": qr_code.public_id, "name": name}
    return True


def remembered(qr_code: QrCode) -> str | None:
    """The provisioningInfo name remembered for this QR code in this session, or None."""
    kept = session.get(SESSION_KEY)
    if isinstance(kept, dict) and kept.get("qr") == qr_code.public_id:
        return provisioning_info_name(kept.get("name"))
    return None


def forget() -> None:
    session.pop(SESSION_KEY, None)


def kept_across_sign_in() -> dict:
    """What a fresh session (sign-in, sign-out, idle end) carries over: the device's setup
    goes on whoever signs in."""
    kept = session.get(SESSION_KEY)
    return {SESSION_KEY: kept} if kept else {}


def enroll_url(token_value: str) -> str:
    """Google's enrollment URL for a successful sign-in (SigninDetail.signinUrl's doc)."""
    return f"{current_app.config['AMAPI_ENROLL_URL']}?{urlencode({'et': token_value})}"


def cancel_url() -> str:
    """Google's URL for a failed sign-in: Android Device Policy ends the setup there. Only the
    user's own choice leads there; a wrong password stays on our page to try again."""
    return current_app.config["AMAPI_ENROLL_URL"].rstrip("/") + "/invalid"


def allow_forms_to_google(response):
    """Start's form is answered with a redirect to Google's enrollment URL, and Chromium holds
    a form's redirects to the page's form-action: add Google's origin for this page only."""
    parts = urlsplit(current_app.config["AMAPI_ENROLL_URL"])
    origin = f"{parts.scheme}://{parts.netloc}"
    response.headers["Content-Security-Policy"] = "; ".join(
        f"form-action 'self' {origin}" if directive.strip() == "form-action 'self'"
        else directive for directive in CONTENT_SECURITY_POLICY.split("; "))
    return response


def token_wait(user_id: int, address: str) -> int | None:
    """Count this Start against SSP_DEVICE_POLICY_LIMIT (per signed-in user) and
    SSP_DEVICE_POLICY_IP_LIMIT (per address) before Google is asked: None when within both,
    else the seconds until it would be (and nothing is counted)."""
    keys = [(setting, ("ssp-adp-token", kind, str(user_id) if kind == "user" else address))
            for setting, kind in TOKEN_LIMITS]
    waits = [seconds for setting, key in keys
             if (seconds := throttle.wait(setting, *key)) is not None]
    if waits:
        return max(waits)
    for setting, key in keys:
        throttle.fail(setting, *key)
    return None


def throttled_page(qr_code: QrCode, form, seconds: int):
    """Too many Starts: a plain sentence, Try again, and Retry-After."""
    text = _("Too many devices were set up with this account or from this network in a short "
             "time. Please try again %(when)s.", when=format_timedelta(
                 timedelta(seconds=seconds), add_direction=True))
    response = current_app.make_response((render_template(
        "selfservice/device_policy.html", qr_code=qr_code, title=_("Please wait a moment"),
        text=text, retry=True, form=form, cancel=cancel_url()), 429))
    response.headers["Retry-After"] = str(seconds)
    return allow_forms_to_google(response)


def setup_only_page(qr_code: QrCode, *, edited: bool = False):
    """Someone opened the sign-in URL outside the device's setup (or edited it)."""
    if edited:
        text = _("The address of this page is incomplete or was changed. Restart the device's "
                 "setup and scan the QR code again.")
    else:
        text = _("This page is part of a device's setup. Scan the QR code during the "
                 "device's setup, and the device opens this page by itself.")
    return render_template("selfservice/device_policy.html", qr_code=qr_code,
                           title=_("Open this page from the device's setup (scan the QR code)"),
                           text=text, retry=False, cancel=None), 400 if edited else 200


def refusal_page(qr_code: QrCode, refusal: SignInFlowRefused, form):
    """The device cannot go on to Google: a plain sentence in the QR's language, and Try again
    where trying again may help."""
    title, text, status, retry = _refusal(refusal)
    response = current_app.make_response((render_template(
        "selfservice/device_policy.html", qr_code=qr_code, title=title, text=text,
        retry=retry, form=form, cancel=cancel_url()), status))
    return allow_forms_to_google(response) if retry else response


def _refusal(refusal: SignInFlowRefused) -> tuple[str, str, int, bool]:
    if refusal.code == "wrong_enterprise":
        return (_("This device cannot be set up here"),
                _("The device is being set up for another organization. Restart the device's "
                  "setup and scan the QR code your IT department gave you."), 403, False)
    if refusal.code == "unknown_device":
        return (_("Please start again"),
                _("Google no longer knows this device's setup; it may have taken too long. "
                  "Restart the device's setup and scan the QR code again."), 400, False)
    if refusal.code == "no_license":
        return (_("No license available"),
                _("No license is free for another device. Please tell your IT department."),
                409, True)
    if refusal.transient:
        return (_("Google's service is not available right now"),
                _("Google's enrollment service did not answer as expected. Please try again "
                  "in a few minutes."), 503, True)
    return (_("Setup is not working right now"),
            _("Google refused to set up the device because of a setup problem. Please try "
              "again later; your IT department can see the cause in the audit log."), 502, True)
