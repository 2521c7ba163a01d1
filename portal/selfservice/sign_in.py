"""The Self Service Portal: sign in, press Start, hand the ticket to the Companion."""
import time

from flask import (abort, current_app, g, redirect, render_template, request, session, url_for)
from flask_babel import gettext as _
from werkzeug.exceptions import TooManyRequests

from portal.accounts import lockout
from portal.accounts.directory import SignInRefused, authenticate_ldap_user
from portal.accounts.local import authenticate_local_user
from portal.accounts.models import PortalUser
from portal.accounts.users import sign_out as end_sessions
from portal.database import db
from portal.enrollment.models import QrCode
from portal.enrollment.self_service import find_ssp_qr_code, issue_enrollment_link
from portal.extensions import client_address, limiter
from portal.i18n import use_language
from portal.provisioning.google_sign_in import SignInFlowRefused, enrollment_token
from portal.selfservice import bp, device_policy
from portal.selfservice.forms import SignInForm, StartForm
from portal.settings import sign_in as sign_in_settings
from portal.vocabulary import UserSource

PASSWORD_METHODS = (UserSource.LDAP, UserSource.LOCAL)


def refusal_message(code: str) -> str:
    """What the end user reads for a refused sign-in: the same text for an unknown user and a
    wrong password, and no directory detail (that goes to the admin's audit log)."""
    return {
        "invalid_credentials": _("The user name or the password is wrong."),
        "account_disabled": _("This account is disabled. Please contact your IT department."),
        "directory_unavailable": _("The company directory cannot be reached right now. Please "
                                   "try again in a few minutes; if it keeps happening, tell "
                                   "your IT department."),
        "directory_misconfigured": _("Sign-in is not working right now because of a setup "
                                     "problem. Your IT department can see the cause in the "
                                     "audit log."),
        "cancelled": _("Sign-in was cancelled. You can try again."),
        "expired": _("The sign-in took too long or was started elsewhere. Please start again."),
    }.get(code, _("Sign-in failed. Please try again."))


def load_qr_code(qr_id: str | None) -> QrCode:
    """The Self Service Portal QR: 404 when unknown, 403 when revoked (in the QR's language)."""
    qr_code = find_ssp_qr_code(qr_id)
    if qr_code is None:
        abort(404)
    use_language(qr_code.lang)
    if qr_code.is_revoked:
        abort(403)
    return qr_code


def _qr_code() -> QrCode:
    return load_qr_code(request.args.get("qr_id"))


def signed_in_user(qr_code: QrCode) -> PortalUser | None:
    """The end user signed in to this QR code's portal in this session, or None: a session
    from before the user's last sign-out (an older epoch: a copied cookie too), or idle for
    longer than SSP_SESSION_IDLE_MINUTES, has ended. Each request that finds the user signed
    in counts as activity."""
    if session.get("ssp_qr_id") != qr_code.public_id or "ssp_user_id" not in session:
        return None
    now = int(time.time())
    idle = now - session.get("ssp_seen", 0)
    if idle > current_app.config["SSP_SESSION_IDLE_MINUTES"] * 60:
        _fresh_session()
        g.ssp_session_ended = True
        return None
    user = db.session.get(PortalUser, session["ssp_user_id"])
    if user is None or not user.active or user.session_epoch != session.get("ssp_epoch"):
        _fresh_session()
        return None
    session["ssp_seen"] = now
    return user


def _fresh_session() -> None:
    """An empty session (no fixation, no one signed in) that keeps the chosen language and
    the device's setup (Android Device Policy's provisioningInfo)."""
    language, kept = session.get("lang"), device_policy.kept_across_sign_in()
    session.clear()
    session.update(kept)
    if language:
        session["lang"] = language


def start_session(user: PortalUser, qr_code: QrCode) -> None:
    _fresh_session()
    session.update(ssp_user_id=user.id, ssp_qr_id=qr_code.public_id,
                   ssp_epoch=user.session_epoch, ssp_seen=int(time.time()))


def _page(qr_code: QrCode, form: SignInForm | None = None, message: str | None = None,
          status: int = 200):
    methods = sign_in_settings.current().enabled
    form = form or SignInForm()
    cancel = device_policy.cancel_url() if device_policy.is_device_policy(qr_code) else None
    password_methods = [m for m in PASSWORD_METHODS if m in methods]
    form.method.choices = [c for c in form.method.choices if c[0] in password_methods]
    if form.method.data not in password_methods and password_methods:
        form.method.data = password_methods[0]
    return render_template("selfservice/sign_in.html", qr_code=qr_code, form=form,
                           methods=methods, password_methods=password_methods,
                           message=message, cancel=cancel), status


@bp.get("/")
def index():
    qr_code = _qr_code()
    if device_policy.is_device_policy(qr_code):
        # Android Device Policy adds &provisioningInfo=…; without it (or edited) the page
        # was not opened by a device's setup.
        if "provisioningInfo" in request.args:
            if not device_policy.remember(qr_code, request.args["provisioningInfo"]):
                return device_policy.setup_only_page(qr_code, edited=True)
        elif device_policy.remembered(qr_code) is None:
            return device_policy.setup_only_page(qr_code)
    if signed_in_user(qr_code) is not None:
        return redirect(url_for("selfservice.start", qr_id=qr_code.public_id))
    return _page(qr_code, message=_ended_message())


def _ended_message() -> str | None:
    if session.pop("ssp_ended", False):
        minutes = current_app.config["SSP_SESSION_IDLE_MINUTES"]
        return _("You were signed out after %(minutes)s minutes without activity. Please sign "
                 "in again.", minutes=minutes)
    return None


def _credentials_refused(response) -> bool:
    """Throttling counts wrong credentials only, not a directory that is down."""
    return g.get("ssp_credentials_refused", False)


@bp.post("/sign-in")
@limiter.limit(lambda: current_app.config["SSP_SIGN_IN_IP_LIMIT"],
               deduct_when=_credentials_refused)
def sign_in():
    # Per name and network (accounts/lockout.py): failures elsewhere do not lock anyone out.
    refused_for = lockout.refusal(lockout.USER, request.form.get("username"), client_address())
    if refused_for is not None:
        raise TooManyRequests(retry_after=refused_for)
    qr_code = _qr_code()
    form = SignInForm()
    methods = [m for m in PASSWORD_METHODS if m in sign_in_settings.current().enabled]
    method = form.method.data if form.method.data in methods else (methods or [None])[0]
    form.method.data = method
    if method is None:
        return _page(qr_code, form, status=422)
    if not form.validate_on_submit():
        return _page(qr_code, form, status=422)
    address = client_address()
    try:
        if method == UserSource.LOCAL:
            user = authenticate_local_user(form.username.data, form.password.data,
                                           client_address=address)
            if user is None:
                raise SignInRefused("invalid_credentials")
        else:
            user = authenticate_ldap_user(sign_in_settings.current().ldap, form.username.data,
                                          form.password.data, client_address=address)
    except SignInRefused as refusal:
        # A disabled account counts too: its password must not be guessable without limit.
        g.ssp_credentials_refused = refusal.code in ("invalid_credentials", "account_disabled")
        if g.ssp_credentials_refused:
            lockout.failed(lockout.USER, form.username.data, address)
        status = 503 if refusal.code.startswith("directory_") else 422
        return _page(qr_code, form, message=refusal_message(refusal.code), status=status)
    start_session(user, qr_code)
    return redirect(url_for("selfservice.start", qr_id=qr_code.public_id), 303)


@bp.route("/start", methods=["GET", "POST"])
def start():
    qr_code = _qr_code()
    user = signed_in_user(qr_code)
    if user is None:
        if g.get("ssp_session_ended"):
            session["ssp_ended"] = True  # said once on the sign-in page
        return redirect(url_for("selfservice.index", qr_id=qr_code.public_id))
    form = StartForm()
    if device_policy.is_device_policy(qr_code):
        return _start_device_policy(qr_code, user, form)
    if not form.validate_on_submit():
        return render_template("selfservice/start.html", qr_code=qr_code, user=user, form=form)
    link = issue_enrollment_link(qr_code, user, current_app.config["PORTAL_PUBLIC_URL"])
    return render_template("selfservice/enroll.html", qr_code=qr_code, user=user, link=link)


def _start_device_policy(qr_code: QrCode, user: PortalUser, form: StartForm):
    """Start for Android Device Policy: a one-time token from Google for this user and the
    device that opened the page, then on to Google's enrollment URL."""
    info_name = device_policy.remembered(qr_code)
    if info_name is None:
        return device_policy.setup_only_page(qr_code)
    if not form.validate_on_submit():
        return device_policy.allow_forms_to_google(current_app.make_response(render_template(
            "selfservice/start.html", qr_code=qr_code, user=user, form=form)))
    if (seconds := device_policy.token_wait(user.id, client_address())) is not None:
        return device_policy.throttled_page(qr_code, form, seconds)
    try:
        value = enrollment_token(qr_code, user, info_name, client_address=client_address())
    except SignInFlowRefused as refusal:
        return device_policy.refusal_page(qr_code, refusal, form)
    device_policy.forget()  # one token per device's setup; a reload asks for no second one
    return redirect(device_policy.enroll_url(value), 303)


@bp.post("/sign-out")
def sign_out():
    qr_code = _qr_code()
    user = signed_in_user(qr_code)
    if user is not None:  # (CSRFProtect has checked the form's token)
        end_sessions(user, client_address=client_address())
    _fresh_session()
    return redirect(url_for("selfservice.index", qr_id=qr_code.public_id), 303)
