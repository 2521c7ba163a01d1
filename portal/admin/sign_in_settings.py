"""Admin → Sign-in methods: which methods the Self Service Portal offers, with their settings
and a "Test connection" button for each directory."""
from dataclasses import asdict

from flask_login import current_user

from portal.accounts.decorators import administrator_required
from portal.admin import bp
from portal.admin.sign_in_forms import SignInSettingsForm
from portal.settings import sign_in
from portal.vocabulary import UserSource
from portal.web.forms import show_errors
from portal.web.htmx import render, saved
from portal.web.urls import azure_callback_url

T = "admin/settings/"


def _form() -> SignInSettingsForm:
    return SignInSettingsForm(data=asdict(sign_in.current().values))


def _context(form, **extra):
    methods = sign_in.current()
    return {"form": form, "methods": methods, "callback_url": azure_callback_url(),
            "admin_totp_required": sign_in.admin_totp_required(), **extra}


@bp.route("/settings/sign-in", methods=["GET", "POST"])
@administrator_required
def sign_in_settings():
    form = _form()
    if form.validate_on_submit():
        try:
            methods = sign_in.save(form.values(), actor=current_user.username)
        except sign_in.SignInSettingsError as error:
            show_errors(form, error.errors)
        else:
            message = "The sign-in methods are saved."
            if not methods.enabled:
                message += (" No method is enabled: end users cannot sign in to the Self "
                            "Service Portal until you enable one.")
            return saved(message, "admin.sign_in_settings", T + "_sign_in_form.html",
                         **_context(_form()))
    status = 422 if form.is_submitted() else 200
    return render(T + "sign_in.html", T + "_sign_in_form.html", **_context(form)), status


def _test(kind: str):
    """Try the values in the form (typed secrets, else the stored ones) without saving them."""
    form = _form()
    form.validate_on_submit()  # fills the form from the request; field errors are shown below
    checks = sign_in.try_connection(kind, form.values(), actor=current_user.username)
    result = {"kind": kind, "checks": checks, "ok": all(check.ok for check in checks)}
    return render(T + "sign_in.html", T + "_connection_test.html",
                  **_context(form, test=result), **result)


@bp.post("/settings/sign-in/test-ldap")
@administrator_required
def test_ldap_connection():
    return _test(UserSource.LDAP)


@bp.post("/settings/sign-in/test-azure")
@administrator_required
def test_azure_connection():
    return _test(UserSource.AZURE)
