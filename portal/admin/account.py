"""My account: every admin (Administrator and Helpdesk) changes their own password."""
from flask import current_app, flash, g, url_for
from flask_login import current_user, login_user

from portal.accounts.admins import change_own_password
from portal.accounts.decorators import admin_required
from portal.accounts.errors import AccountError
from portal.admin import bp
from portal.admin.people_forms import OwnPasswordForm
from portal.extensions import limiter
from portal.web.forms import show_errors
from portal.web.htmx import go, render

T = "admin/people/"


def _admin_key() -> str:
    return f"admin-password:{getattr(current_user, 'id', '')}"


def _wrong_current_password(response) -> bool:
    return g.get("wrong_current_password", False)


@bp.route("/account/password", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["ADMIN_LOGIN_LIMIT"], key_func=_admin_key,
               methods=["POST"], deduct_when=_wrong_current_password)
@admin_required
def account_password():
    """A stolen session cannot guess the current password: wrong ones are throttled like the
    sign-in's."""
    form = OwnPasswordForm()
    if form.validate_on_submit():
        admin = current_user._get_current_object()
        try:
            change_own_password(admin, form.current_password.data, form.password.data)
        except AccountError as error:
            g.wrong_current_password = "current_password" in error.errors
            show_errors(form, error.errors, first_only=True)
        else:
            login_user(admin)  # this session goes on; every other one has ended
            flash("Your password is changed. You are signed out in every other browser.",
                  "info")
            return go(url_for("admin.account_password"))
    status = 422 if form.is_submitted() else 200
    return render(T + "account_password.html", T + "_own_password_form.html",
                  form=form), status
