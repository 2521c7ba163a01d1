"""Admin sign-in and sign-out, throttled per user name and network, and per address."""
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from werkzeug.exceptions import TooManyRequests

from portal.accounts import lockout
from portal.accounts.admins import authenticate, sign_out
from portal.accounts.decorators import admin_required
from portal.admin import bp
from portal.admin.forms import EmptyForm, LoginForm
from portal.admin.two_step import needs_second_step, start
from portal.extensions import client_address
from portal.extensions import limiter
from portal.web.session import safe_next


def _failed(response) -> bool:
    # Only failed attempts count: a successful sign-in answers 303.
    return response.status_code != 303


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["ADMIN_LOGIN_IP_LIMIT"], methods=["POST"],
               deduct_when=_failed)
def login():
    form = LoginForm(next=request.args.get("next", ""))
    if request.method == "POST":
        # Per name and network (accounts/lockout.py): failures elsewhere do not lock anyone out.
        refused_for = lockout.refusal(lockout.ADMIN, request.form.get("username"),
                                      client_address())
        if refused_for is not None:
            raise TooManyRequests(retry_after=refused_for)
    if not form.validate_on_submit():
        return render_template("admin/login.html", form=form), 422 if form.is_submitted() else 200
    address = client_address()
    admin = authenticate(form.username.data, form.password.data, client_address=address,
                         second_step=needs_second_step)
    if admin is None:
        lockout.failed(lockout.ADMIN, form.username.data, address)
        form.password.errors.append("The user name or the password is wrong.")
        return render_template("admin/login.html", form=form), 422
    if needs_second_step(admin):
        return start(admin, form.next.data)
    login_user(admin)
    return redirect(safe_next(form.next.data, url_for("admin.pending")), 303)


@bp.post("/logout")
@admin_required
def logout():
    if EmptyForm().validate_on_submit():
        sign_out(current_user, client_address=client_address())
        logout_user()
        flash("You are signed out, in every browser where you were signed in.", "info")
    return redirect(url_for("admin.login"), 303)
