"""Admin → Companion: the app the QR codes install and the scheme of its enrollment link."""
from flask_login import current_user

from portal.accounts.decorators import administrator_required
from portal.admin import bp
from portal.admin.settings_forms import CompanionForm
from portal.settings import companion
from portal.settings.companion import CompanionError
from portal.web.forms import show_errors
from portal.web.htmx import render, saved

T = "admin/settings/"


def _form() -> CompanionForm:
    config = companion.current()
    return CompanionForm(data={
        "component_name": config.component_name if config else "",
        "download_url": config.download_url if config else "",
        "signature_checksum": config.signature_checksum if config else "",
        "leave_system_apps_enabled": config.leave_system_apps_enabled if config else True,
        "enrollment_link_scheme": companion.enrollment_link_scheme(),
    })


def _context(form):
    config = companion.current()
    return {"form": form, "source": companion.source(), "example": companion.is_example(config)}


@bp.route("/settings/companion", methods=["GET", "POST"])
@administrator_required
def companion_settings():
    form = _form()
    if form.validate_on_submit():
        config = form.config()
        try:
            companion.save_companion(config.component_name, config.download_url,
                                     config.signature_checksum, config.leave_system_apps_enabled,
                                     form.scheme(), actor=current_user.username)
        except CompanionError as error:
            show_errors(form, error.errors)
        else:
            return saved("The Companion settings are saved. QR codes created from now on use "
                         "them.", "admin.companion_settings", T + "_companion_form.html",
                         **_context(form))
    status = 422 if form.is_submitted() else 200
    return render(T + "companion.html", T + "_companion_form.html", **_context(form)), status
