"""Admin → Companion: the app the QR codes install and the scheme of its enrollment link; its
values can be read from the APK (uploaded, or fetched from the download URL)."""
from flask import request
from flask_login import current_user

from portal.accounts.decorators import administrator_required
from portal.admin import bp
from portal.admin.settings_forms import CompanionForm
from portal.settings import companion
from portal.settings.companion import CompanionError
from portal.web.forms import show_errors
from portal.web.htmx import render, saved, wants_fragment
from portal.web.uploads import allows_upload

T = "admin/settings/"


def _form(**kwargs) -> CompanionForm:
    config = companion.current()
    saved_apk = companion.saved_apk()
    return CompanionForm(**kwargs, data={
        "component_name": config.component_name if config else "",
        "download_url": config.download_url if config else "",
        "signature_checksum": config.signature_checksum if config else "",
        "leave_system_apps_enabled": config.leave_system_apps_enabled if config else True,
        "enrollment_link_scheme": companion.enrollment_link_scheme(),
        "apk_sha256": saved_apk[0].sha256 if saved_apk else "",
    })


def _context(form, read=None):
    config = companion.current()
    apk = companion.stored_apk(form.apk_sha256.data)
    return {"form": form, "source": companion.source(), "example": companion.is_example(config),
            "apk": apk, "read": read, "portal_url": companion.portal_apk_url(apk) if apk else None,
            "max_mb": companion.APK_MAX_BYTES // (1024 * 1024)}


def _read(form, action: str):
    """Read the chosen file or fetch the download URL; fill the form with the APK's values."""
    try:
        if action == "fetch":
            apk = companion.fetch_apk(form.download_url.data or "", actor=current_user.username)
        else:
            upload = request.files.get(form.apk.name)
            if not upload or not upload.filename:
                raise CompanionError({"apk": "Choose the Companion's APK file, then read it."})
            apk = companion.read_uploaded_apk(upload.read(companion.APK_MAX_BYTES + 1),
                                              actor=current_user.username,
                                              filename=upload.filename)
    except CompanionError as error:
        show_errors(form, error.errors)
        return None
    form.apk_sha256.data = apk.sha256
    form.signature_checksum.data = apk.facts.signature_checksum
    if apk.facts.component_name:
        form.component_name.data = apk.facts.component_name
    return apk


# The APK and the other fields; a file just over APK_MAX_BYTES still gets its message from
# the reader, a larger body the one of apk_too_large() (admin.zero_touch.request_too_large).
@bp.route("/settings/companion", methods=["GET", "POST"])
@allows_upload(lambda: companion.APK_MAX_BYTES + 1024 * 1024)
@administrator_required
def companion_settings():
    form = _form()
    action = request.form.get("action", "save")
    has_file = bool(request.files.get(form.apk.name) and request.files[form.apk.name].filename)
    if form.is_submitted() and action in ("forget", "serve"):
        # Choices that change the form, not the settings: the admin still reviews and saves.
        apk = companion.stored_apk(form.apk_sha256.data)
        if action == "forget" or apk is None:
            form.apk_sha256.data = ""
        elif url := companion.portal_apk_url(apk):
            form.download_url.data = url
        return render(T + "companion.html", T + "_companion_form.html", **_context(form))
    if form.is_submitted() and (action in ("read", "fetch") or has_file):
        # Reading fills the form for the admin to review; nothing is saved yet.
        read = _read(form, "fetch" if action == "fetch" else "read")
        status = 200 if read else 422
        return render(T + "companion.html", T + "_companion_form.html",
                      **_context(form, read)), status
    if form.validate_on_submit():
        config = form.config()
        try:
            companion.save_companion(config.component_name, config.download_url,
                                     config.signature_checksum, config.leave_system_apps_enabled,
                                     form.scheme(), actor=current_user.username,
                                     apk_sha256=form.apk_sha256.data or None)
        except CompanionError as error:
            show_errors(form, error.errors)
        else:
            return saved("The Companion settings are saved. QR codes created from now on use "
                         "them.", "admin.companion_settings", T + "_companion_form.html",
                         **_context(form))
    status = 422 if form.is_submitted() else 200
    return render(T + "companion.html", T + "_companion_form.html", **_context(form)), status


def apk_too_large():
    """The answer to a body over the limit: the body was not read, so the form shows the saved
    values and the message beside the file."""
    form = _form(formdata=None)
    show_errors(form, {"apk": companion.apk_too_large_message()})
    # 422 rather than 413 so that htmx swaps the message in (see base.html's htmx-config).
    return render(T + "companion.html", T + "_companion_form.html",
                  **_context(form)), 422 if wants_fragment() else 413
