"""Two-step sign-in: the code after the password, and each admin's own setup page.

Between the password and the code the admin is not signed in: the session holds only the
admin's id, session epoch and a deadline five minutes away (PENDING). Signing out everywhere
(the epoch) or the deadline ends it; only a right code calls login_user.
"""
import time

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import InputRequired, Length

from portal import vault
from portal.accounts import two_step
from portal.accounts.decorators import admin_required, administrator_required
from portal.accounts.models import AdminUser
from portal.admin import bp
from portal.database import db
from portal.extensions import client_address, limiter
from portal.settings import sign_in
from portal.web.forms import show_errors, strip
from portal.web.htmx import saved
from portal.web.session import safe_next

PENDING, SECRET = "two_step_pending", "two_step_secret"
PENDING_SECONDS = 5 * 60
T = "admin/two_step/"
WRONG_CODE = "This code is wrong or was used already. Type the code your app shows now, or " \
             "one of your recovery codes."


class CodeForm(FlaskForm):
    code = StringField("Code", filters=[strip], validators=[
        InputRequired("Type the 6-digit code your app shows."),
        Length(max=32, message="A code has 6 digits; a recovery code 10 letters and digits.")],
        render_kw={"autocomplete": "one-time-code", "inputmode": "text", "spellcheck": "false",
                   "autofocus": True})


class ConfirmForm(FlaskForm):
    confirmation = PasswordField("Your password or the code your app shows", validators=[
        InputRequired("Type your password or the code your app shows."),
        Length(max=1024, message="This is not your password.")],
        render_kw={"autocomplete": "current-password"})


class RequiredForm(FlaskForm):
    admin_totp_required = BooleanField("Require two-step sign-in of every admin")


# The sign-in's second step

def needs_second_step(admin: AdminUser) -> bool:
    return two_step.is_on(admin) or sign_in.admin_totp_required()


def start(admin: AdminUser, next_url: str):
    """After the right password: remember who is half signed in, and ask for the code."""
    session[PENDING] = {"admin": admin.id, "epoch": admin.session_epoch,
                        "until": time.time() + PENDING_SECONDS, "next": next_url or ""}
    session.pop(SECRET, None)
    return redirect(url_for("admin.sign_in_code"), 303)


def _pending_admin() -> AdminUser | None:
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or pending.get("until", 0) < time.time():
        return None
    admin = db.session.get(AdminUser, pending.get("admin"))
    if admin is None or not admin.active or admin.session_epoch != pending.get("epoch"):
        return None
    return admin


def _pending_key() -> str:
    pending = session.get(PENDING)
    return f"admin-code:{pending.get('admin') if isinstance(pending, dict) else ''}"


def _failed(response) -> bool:
    return response.status_code == 422  # a wrong code; the right one answers 303 or 200


def _finish(admin: AdminUser):
    next_url = safe_next(session.pop(PENDING, {}).get("next"), url_for("admin.pending"))
    session.pop(SECRET, None)
    login_user(admin)
    return next_url


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["ADMIN_LOGIN_LIMIT"], key_func=_pending_key,
               methods=["POST"], deduct_when=_failed)
@limiter.limit(lambda: current_app.config["ADMIN_LOGIN_IP_LIMIT"], methods=["POST"],
               deduct_when=_failed)
def sign_in_code():
    if isinstance(current_user._get_current_object(), AdminUser):
        return redirect(url_for("admin.pending"))  # signed in already
    admin = _pending_admin()
    if admin is None:
        if session.pop(PENDING, None):
            flash("Sign in again: the code was not typed within 5 minutes.", "error")
        return redirect(url_for("admin.login"), 303 if request.method == "POST" else 302)
    if not two_step.is_on(admin):
        return _set_up(admin, at_sign_in=True)
    form = CodeForm()
    if form.validate_on_submit():
        if two_step.verify_sign_in(admin, form.code.data, client_address=client_address()):
            return redirect(_finish(admin), 303)
        form.code.errors.append(WRONG_CODE)
    status = 422 if form.is_submitted() else 200
    return render_template(T + "code.html", form=form, admin=admin), status


# Setting it up: on the admin's own page, or at sign-in when every admin must have it

def _secret() -> str:
    """The secret being set up, kept (encrypted) in the session until the admin confirms it."""
    try:
        return vault.decrypt(session[SECRET])
    except (KeyError, ValueError, TypeError):
        secret = two_step.new_secret()
        session[SECRET] = vault.encrypt(secret)
        return secret


def _set_up(admin: AdminUser, *, at_sign_in: bool):
    secret, form = _secret(), CodeForm()
    if form.validate_on_submit():
        try:
            codes = two_step.turn_on(admin, secret, form.code.data,
                                     client_address=client_address())
        except two_step.TwoStepError as error:
            show_errors(form, error.errors)
        else:
            session.pop(SECRET, None)
            done = _finish(admin) if at_sign_in else url_for("admin.two_step")
            return render_template(T + "recovery_codes.html", codes=codes, done=done,
                                   turned_on=True)
    uri = two_step.authenticator_uri(secret, admin.username)
    return render_template(T + "set_up.html", form=form, secret=secret, at_sign_in=at_sign_in,
                           qr=two_step.qr_svg(uri)), 422 if form.is_submitted() else 200


# Each admin's own page

@bp.route("/account/two-step", methods=["GET", "POST"], endpoint="two_step")
@admin_required
def two_step_page():
    admin = current_user._get_current_object()
    if not two_step.is_on(admin):
        return _set_up(admin, at_sign_in=False)
    return _account(admin, ConfirmForm(), ConfirmForm(prefix="renew"))


def _account(admin, off_form, renew_form, status=200):
    return render_template(T + "account.html", admin=admin, off_form=off_form,
                           renew_form=renew_form, required=sign_in.admin_totp_required(),
                           remaining=two_step.remaining_recovery_codes(admin)), status


def _own_key() -> str:
    return f"admin-confirm:{getattr(current_user, 'id', '')}"


# A stolen session must not try passwords here faster than at the sign-in.
_confirm_limit = limiter.shared_limit(lambda: current_app.config["ADMIN_LOGIN_LIMIT"],
                                      scope="admin-confirm", key_func=_own_key,
                                      deduct_when=_failed)


@bp.post("/account/two-step/off")
@admin_required
@_confirm_limit
def turn_off_two_step():
    admin, form = current_user._get_current_object(), ConfirmForm()
    if sign_in.admin_totp_required():
        form.validate_on_submit()
        form.confirmation.errors = ["Every admin must sign in with two steps (Admin → Sign-in "
                                    "methods): it cannot be turned off."]
    elif form.validate_on_submit():
        try:
            two_step.turn_off(admin, form.confirmation.data, client_address=client_address())
        except two_step.TwoStepError as error:
            show_errors(form, error.errors)
        else:
            return saved("Two-step sign-in is off: you sign in with your password alone.",
                         "admin.two_step")
    return _account(admin, form, ConfirmForm(prefix="renew", formdata=None), 422)


@bp.post("/account/two-step/recovery-codes")
@admin_required
@_confirm_limit
def new_recovery_codes():
    admin, form = current_user._get_current_object(), ConfirmForm(prefix="renew")
    if form.validate_on_submit():
        try:
            codes = two_step.renew_recovery_codes(admin, form.confirmation.data,
                                                  client_address=client_address())
        except two_step.TwoStepError as error:
            show_errors(form, error.errors)
        else:
            return render_template(T + "recovery_codes.html", codes=codes,
                                   done=url_for("admin.two_step"), turned_on=False)
    return _account(admin, ConfirmForm(formdata=None), form, 422)


# Admin → Sign-in methods: required for everyone

@bp.post("/settings/sign-in/two-step")
@administrator_required
def admin_totp_required():
    form = RequiredForm()
    if form.validate_on_submit():
        required = bool(form.admin_totp_required.data)
        sign_in.set_admin_totp_required(required, actor=current_user.username)
        return saved("Every admin must now sign in with two steps; those without it set it up "
                     "at their next sign-in." if required else
                     "Two-step sign-in is left to each admin.", "admin.sign_in_settings")
    return redirect(url_for("admin.sign_in_settings"), 303)
