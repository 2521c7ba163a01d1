"""Settings pages: Self Service Portal (OTP defaults), Companion, Localizations, Zero-Touch."""
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from portal.accounts.decorators import admin_required
from portal.admin import bp
from portal.admin.forms import EmptyForm
from portal.admin.settings_forms import (CompanionForm, LocalizationForm, OtpPolicyForm,
                                         ZeroTouchSearchForm, ZeroTouchUploadForm)
from portal.database import db
from portal.enrollment import zero_touch as zero_touch_list
from portal.enrollment.models import ZeroTouchEntry
from portal.settings import companion, localizations as localization_list, otp_policy
from portal.settings.companion import CompanionError
from portal.settings.localizations import LocalizationError
from portal.settings.otp_policy import OtpPolicyError
from portal.web.htmx import make_response, render, wants_fragment

T = "admin/settings/"
ZERO_TOUCH_PAGE_SIZE = 50
SHOWN_REJECTS = 20


def _with_flash(fragment: str | None, status: int = 200, **context):
    """An htmx answer: the fragment (if any), then the flash region out of band."""
    body = render_template(fragment, **context) if fragment else ""
    return make_response(body + render_template("_flash.html", oob=True), status)


def _saved(message: str, endpoint: str, fragment: str | None, **context):
    """303 back to the page after a plain POST; htmx gets the fragment and the flash."""
    flash(message, "info")
    if not wants_fragment():
        return redirect(url_for(endpoint), 303)
    return _with_flash(fragment, **context)


def _refused(message: str, template: str, /, **context):
    """422 with the message: the page, or (htmx) only the flash, leaving the row in place."""
    flash(message, "error")
    if not wants_fragment():
        return render_template(template, **context), 422
    response = _with_flash(None, 422)
    response.headers["HX-Reswap"] = "none"
    return response


def _field_error(form, name: str, message: str) -> None:
    getattr(form, name).errors.append(message)


# Self Service Portal: the OTP defaults

def _otp_context(form, policy):
    return {"form": form, "policy": policy, "example": otp_policy.example_otp(policy)}


@bp.route("/settings/self-service-portal", methods=["GET", "POST"])
@admin_required
def ssp_settings():
    policy = otp_policy.current()
    form = OtpPolicyForm(data={"length": policy.length, "alphabet": policy.alphabet,
                               "validity_hours": policy.validity_hours,
                               "unlimited": policy.validity_hours is None})
    if form.validate_on_submit():
        validity = None if form.unlimited.data else form.validity_hours.data
        try:
            policy = otp_policy.save_otp_policy(form.length.data, form.alphabet.data, validity,
                                                actor=current_user.username)
        except OtpPolicyError as error:
            _field_error(form, error.field, error.message)
        else:
            return _saved("The OTP defaults are saved.", "admin.ssp_settings",
                          T + "_otp_policy_form.html", **_otp_context(form, policy))
    status = 422 if form.is_submitted() else 200
    return render(T + "self_service_portal.html", T + "_otp_policy_form.html",
                  **_otp_context(form, policy)), status


# Companion

def _companion_form() -> CompanionForm:
    config = companion.current()
    return CompanionForm(data={
        "component_name": config.component_name if config else "",
        "download_url": config.download_url if config else "",
        "signature_checksum": config.signature_checksum if config else "",
        "leave_system_apps_enabled": config.leave_system_apps_enabled if config else True,
        "enrollment_link_scheme": companion.enrollment_link_scheme(),
    })


def _companion_context(form):
    config = companion.current()
    return {"form": form, "source": companion.source(), "example": companion.is_example(config)}


@bp.route("/settings/companion", methods=["GET", "POST"])
@admin_required
def companion_settings():
    form = _companion_form()
    if form.validate_on_submit():
        config = form.config()
        try:
            companion.save_companion(config.component_name, config.download_url,
                                     config.signature_checksum, config.leave_system_apps_enabled,
                                     form.scheme(), actor=current_user.username)
        except CompanionError as error:
            for name, message in error.errors.items():
                _field_error(form, name, message)
        else:
            return _saved("The Companion settings are saved. QR codes created from now on use "
                          "them.", "admin.companion_settings", T + "_companion_form.html",
                          **_companion_context(form))
    status = 422 if form.is_submitted() else 200
    return render(T + "companion.html", T + "_companion_form.html",
                  **_companion_context(form)), status


# Localizations

@bp.get("/settings/localizations")
@admin_required
def localizations():
    return render(T + "localizations.html", T + "_localization_table.html",
                  form=LocalizationForm(formdata=None),
                  localizations=localization_list.all_localizations())


@bp.post("/settings/localizations")
@admin_required
def add_localization():
    form = LocalizationForm()
    if form.validate_on_submit():
        try:
            added = localization_list.add_localization(form.tag.data, form.name.data,
                                                       actor=current_user.username)
        except LocalizationError as error:
            _field_error(form, error.field, error.message)
        else:
            return _saved(f"The localization {added.tag} ({added.name}) is added.",
                          "admin.localizations", T + "_localization_added.html",
                          form=LocalizationForm(formdata=None),
                          localizations=localization_list.all_localizations())
    return render(T + "localizations.html", T + "_localization_form.html", form=form,
                  localizations=localization_list.all_localizations()), 422


@bp.get("/settings/localizations/<tag>/delete")
@admin_required
def confirm_delete_localization(tag):
    localization = localization_list.find(tag)
    if localization is None or localization.builtin:
        abort(404)
    return render_template(T + "confirm_delete.html", form=EmptyForm(),
                           title=f"Delete the localization {localization.tag}?",
                           message=f"{localization.name} ({localization.tag}) will no longer be "
                                   "offered in the wizard. QR codes already created with it "
                                   "keep it.",
                           action=url_for("admin.delete_localization", tag=localization.tag),
                           back=url_for("admin.localizations"))


@bp.post("/settings/localizations/<tag>/delete")
@admin_required
def delete_localization(tag):
    try:
        localization_list.delete_localization(tag, actor=current_user.username)
    except LocalizationError as error:
        return _refused(error.message, T + "localizations.html",
                        form=LocalizationForm(formdata=None),
                        localizations=localization_list.all_localizations())
    # htmx: the empty answer replaces the row, which removes it.
    return _saved(f"The localization {tag} is deleted.", "admin.localizations", None)


# Zero-Touch / Knox

def _zero_touch_context(upload_form=None, **extra):
    search_form = ZeroTouchSearchForm(formdata=request.args)
    page = db.paginate(zero_touch_list.search(search_form.q.data),
                       page=request.args.get("page", 1, type=int),
                       per_page=ZERO_TOUCH_PAGE_SIZE, error_out=False)
    return {"upload_form": upload_form or ZeroTouchUploadForm(formdata=None),
            "search_form": search_form, "page": page, "total": zero_touch_list.count(),
            "shown_rejects": SHOWN_REJECTS, **extra}


@bp.get("/settings/zero-touch")
@admin_required
def zero_touch():
    return render(T + "zero_touch.html", T + "_zero_touch_table.html", **_zero_touch_context())


@bp.post("/settings/zero-touch/upload")
@admin_required
def upload_zero_touch():
    form = ZeroTouchUploadForm()
    if form.validate_on_submit():
        try:
            result = zero_touch_list.import_identifiers(
                zero_touch_list.read_lines(form.file.data.read()), actor_type="admin",
                actor=current_user.username)
        except zero_touch_list.ZeroTouchError as error:
            _field_error(form, "file", error.message)
            return render(T + "zero_touch.html", T + "_zero_touch_upload.html",
                          **_zero_touch_context(form, rejected=error.rejected)), 422
        if wants_fragment():
            return render_template(T + "_zero_touch_uploaded.html",
                                   **_zero_touch_context(result=result))
        _flash_import(result)
        return redirect(url_for("admin.zero_touch"), 303)
    return render(T + "zero_touch.html", T + "_zero_touch_upload.html",
                  **_zero_touch_context(form)), 422


def _flash_import(result) -> None:
    flash(f"Added {result.added}, already listed {result.duplicates}, "
          f"rejected {len(result.rejected)}.", "info")
    for line_no, text, reason in result.rejected[:SHOWN_REJECTS]:
        flash(f"Line {line_no} ({text[:40]}): {reason}", "error")
    if len(result.rejected) > SHOWN_REJECTS:
        flash(f"… and {len(result.rejected) - SHOWN_REJECTS} more rejected lines.", "error")


@bp.errorhandler(RequestEntityTooLarge)
def request_too_large(error):
    # Raised while the CSRF check reads the body, before any view runs.
    if request.endpoint != "admin.upload_zero_touch":
        return render_template("errors/generic.html", error=error), 413
    limit = current_app.config["MAX_CONTENT_LENGTH"] / (1024 * 1024)
    form = ZeroTouchUploadForm(formdata=None)
    form.file.errors = [f"The file is larger than {limit:g} MiB; split it into smaller files "
                        "and upload them one after the other."]
    # 422 rather than 413 so that htmx swaps the message in (see base.html's htmx-config).
    return render(T + "zero_touch.html", T + "_zero_touch_upload.html",
                  **_zero_touch_context(form)), 422 if wants_fragment() else 413


@bp.get("/settings/zero-touch/<int:entry_id>/delete")
@admin_required
def confirm_delete_zero_touch_entry(entry_id):
    entry = db.get_or_404(ZeroTouchEntry, entry_id)
    kind = "IMEI" if entry.kind == "imei" else "serial number"
    return render_template(T + "confirm_delete.html", form=EmptyForm(),
                           title=f"Remove {entry.identifier} from the Zero-Touch / Knox list?",
                           message=f"The device with the {kind} {entry.identifier} will then "
                                   "be allowed to enroll with Advanced QR provisioning.",
                           action=url_for("admin.delete_zero_touch_entry", entry_id=entry.id),
                           back=url_for("admin.zero_touch"))


@bp.post("/settings/zero-touch/<int:entry_id>/delete")
@admin_required
def delete_zero_touch_entry(entry_id):
    try:
        identifier = zero_touch_list.delete_entry(entry_id, actor=current_user.username)
    except zero_touch_list.ZeroTouchError as error:
        return _refused(error.message, T + "zero_touch.html", **_zero_touch_context())
    return _saved(f"{identifier} is removed from the Zero-Touch / Knox list.", "admin.zero_touch",
                  None)
