"""Admin → Android Management API: the enterprise, the service-account key, the policies, the
Pub/Sub push set-up, and "Test connection" (Administrators only)."""
import sqlalchemy as sa
from flask import current_app
from flask_login import current_user

from portal.accounts.decorators import administrator_required
from portal.admin import bp
from portal.admin.amapi_forms import AmapiSettingsForm
from portal.amapi.client import current
from portal.database import db
from portal.enrollment.models import QrCode
from portal.settings import amapi
from portal.vocabulary import Management
from portal.web.forms import show_errors
from portal.web.htmx import render, saved

T = "admin/settings/"


def _form(**kwargs) -> AmapiSettingsForm:
    row = current()
    return AmapiSettingsForm(**kwargs, data={
        "enterprise": row.enterprise_name if row else "",
        "policy_ssp": row.policy_ssp if row else "",
        "policy_auto": row.policy_auto if row else "",
        "push_email": row.push_email if row else ""})


def _options_in_use() -> frozenset[str]:
    """The options of the Android Device Policy QR codes not revoked: each keeps its policy."""
    return frozenset(db.session.scalars(sa.select(QrCode.option).distinct().where(
        QrCode.management == Management.ADP, QrCode.revoked_at.is_(None))))


def _context(form, **extra):
    push_url = current_app.config["PORTAL_PUBLIC_URL"] + amapi.PUSH_PATH
    return {"form": form, "status": amapi.status(), "push_url": push_url, **extra}


@bp.route("/settings/android-management", methods=["GET", "POST"])
@administrator_required
def amapi_settings():
    form = _form()
    if form.validate_on_submit():
        try:
            amapi.save(form.values(), actor=current_user.username, in_use=_options_in_use())
        except amapi.AmapiSettingsError as error:
            show_errors(form, error.errors)
        else:
            return saved("The Android Management API settings are saved.",
                         "admin.amapi_settings", T + "_amapi_form.html",
                         **_context(_form(formdata=None)))  # as saved (normalised)
    elif form.is_submitted():
        show_errors(form, amapi.validate(form.values(), _options_in_use()),
                    first_only=True)  # all at once
    status = 422 if form.is_submitted() else 200
    return render(T + "amapi.html", T + "_amapi_form.html", **_context(form)), status


@bp.post("/settings/android-management/test")
@administrator_required
def test_amapi_connection():
    """Test the values in the form (an uploaded or pasted key, else the saved one) without
    saving them, and show each step."""
    form = _form()
    form.validate_on_submit()  # fills the form from the request
    steps = amapi.try_connection(form.values(), actor=current_user.username)
    result = {"steps": steps, "ok": all(step.ok for step in steps)}
    return render(T + "amapi.html", T + "_amapi_tested.html",
                  **_context(form, test=result), **result)
