"""Admin → Sign-in methods: which methods the Self Service Portal offers, with their settings
and a "Test connection" button for each directory."""
from dataclasses import asdict

from flask import render_template
from flask_login import current_user

from portal.accounts.decorators import admin_required
from portal.admin import bp
from portal.admin.settings import _saved
from portal.admin.sign_in_forms import SignInSettingsForm
from portal.audit.log import record
from portal.database import db
from portal.directory import azure, ldap
from portal.selfservice.azure import callback_url
from portal.settings import sign_in
from portal.web.htmx import render, wants_fragment

T = "admin/settings/"


def _form() -> SignInSettingsForm:
    return SignInSettingsForm(data=asdict(sign_in.current().values))


def _context(form, **extra):
    methods = sign_in.current()
    return {"form": form, "methods": methods, "callback_url": callback_url(), **extra}


@bp.route("/settings/sign-in", methods=["GET", "POST"])
@admin_required
def sign_in_settings():
    form = _form()
    if form.validate_on_submit():
        try:
            saved = sign_in.save(form.values(), actor=current_user.username)
        except sign_in.SignInSettingsError as error:
            for name, message in error.errors.items():
                getattr(form, name).errors.append(message)
        else:
            message = "The sign-in methods are saved."
            if not saved.enabled:
                message += (" No method is enabled: end users cannot sign in to the Self "
                            "Service Portal until you enable one.")
            return _saved(message, "admin.sign_in_settings", T + "_sign_in_form.html",
                          **_context(_form()))
    status = 422 if form.is_submitted() else 200
    return render(T + "sign_in.html", T + "_sign_in_form.html", **_context(form)), status


def _test(kind: str):
    """Try the values in the form (typed secrets, else the stored ones) without saving them."""
    form = _form()
    form.validate_on_submit()  # fills the form from the request; field errors are shown below
    values = form.values()
    password, secret = sign_in.effective_secrets(values)
    errors = {name: message for name, message in sign_in.validate(values, password, secret).items()
              if name.startswith(kind)}
    if errors:
        checks = [ldap.Check("Settings", False, " ".join(errors.values()))]
    elif kind == "ldap":
        checks = ldap.test_connection(sign_in.ldap_config(values, password))
    else:
        checks = azure.test_connection(sign_in.azure_config(values, secret))
    ok = all(check.ok for check in checks)
    record(f"settings.test_{kind}", actor_type="admin", actor=current_user.username,
           outcome="success" if ok else "error",
           failed=next((f"{c.name}: {c.detail}" for c in checks if not c.ok), None))
    db.session.commit()
    result = {"kind": kind, "checks": checks, "ok": ok}
    if wants_fragment():
        return render_template(T + "_connection_test.html", **result)
    return render_template(T + "sign_in.html", **_context(form, test=result))


@bp.post("/settings/sign-in/test-ldap")
@admin_required
def test_ldap_connection():
    return _test("ldap")


@bp.post("/settings/sign-in/test-azure")
@admin_required
def test_azure_connection():
    return _test("azure")
