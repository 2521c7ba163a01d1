"""Admin → Zero-Touch / Knox: the serial numbers and IMEIs the API refuses to enroll."""
from flask import current_app, render_template, request, url_for
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from portal.accounts.decorators import administrator_required
from portal.admin import bp
from portal.admin.companion import apk_too_large
from portal.admin.forms import EmptyForm
from portal.admin.settings_forms import ZeroTouchSearchForm, ZeroTouchUploadForm
from portal.database import db
from portal.enrollment import zero_touch as zero_touch_list
from portal.enrollment.models import ZeroTouchEntry
from portal.web.forms import show_errors
from portal.web.htmx import refused, render, saved, wants_fragment
from portal.web.pagination import paginate

T = "admin/settings/"
PAGE_SIZE = 50
SHOWN_REJECTS = 20


def _context(upload_form=None, **extra):
    search_form = ZeroTouchSearchForm(formdata=request.args)
    query = search_form.q.data if search_form.validate() else ""
    page = paginate(zero_touch_list.search(query), request.args, PAGE_SIZE)
    return {"upload_form": upload_form or ZeroTouchUploadForm(formdata=None),
            "search_form": search_form, "query": query, "page": page,
            "total": zero_touch_list.count(),
            "shown_rejects": SHOWN_REJECTS, **extra}


@bp.get("/settings/zero-touch")
@administrator_required
def zero_touch():
    return render(T + "zero_touch.html", T + "_zero_touch_table.html", **_context())


@bp.post("/settings/zero-touch/upload")
@administrator_required
def upload_zero_touch():
    form = ZeroTouchUploadForm()
    if not form.validate_on_submit():
        return render(T + "zero_touch.html", T + "_zero_touch_upload.html", **_context(form)), 422
    try:
        result = zero_touch_list.import_identifiers(
            zero_touch_list.read_lines(form.file.data.read()), actor_type="admin",
            actor=current_user.username)
    except zero_touch_list.ZeroTouchError as error:
        show_errors(form, error.errors)
        return render(T + "zero_touch.html", T + "_zero_touch_upload.html",
                      **_context(form, rejected=error.rejected)), 422
    # htmx: the upload card shows the summary and the rejected lines itself.
    return saved(_import_messages(result), "admin.zero_touch", T + "_zero_touch_uploaded.html",
                 quiet=True, **_context(result=result))


def _import_messages(result) -> list[tuple[str, str]]:
    messages = [(f"Added {result.added}, already listed {result.duplicates}, "
                 f"rejected {len(result.rejected)}.", "info")]
    messages += [(f"Line {line_no} ({text[:40]}): {reason}", "error")
                 for line_no, text, reason in result.rejected[:SHOWN_REJECTS]]
    if len(result.rejected) > SHOWN_REJECTS:
        messages.append((f"… and {len(result.rejected) - SHOWN_REJECTS} more rejected lines.",
                         "error"))
    return messages


@bp.errorhandler(RequestEntityTooLarge)
def request_too_large(error):
    # Raised while the CSRF check reads the body, before any view runs.
    if request.endpoint == "admin.companion_settings":
        return apk_too_large()
    if request.endpoint != "admin.upload_zero_touch":
        return render_template("errors/generic.html", error=error), 413
    limit = current_app.config["MAX_CONTENT_LENGTH"] / (1024 * 1024)
    form = ZeroTouchUploadForm(formdata=None)
    show_errors(form, {"file": f"The file is larger than {limit:g} MiB; split it into smaller "
                               "files and upload them one after the other."})
    # 422 rather than 413 so that htmx swaps the message in (see base.html's htmx-config).
    return render(T + "zero_touch.html", T + "_zero_touch_upload.html",
                  **_context(form)), 422 if wants_fragment() else 413


@bp.get("/settings/zero-touch/<id:entry_id>/delete")
@administrator_required
def confirm_delete_zero_touch_entry(entry_id):
    entry = db.get_or_404(ZeroTouchEntry, entry_id)
    kind = "IMEI" if entry.kind == "imei" else "serial number"
    return render_template("admin/confirm.html", form=EmptyForm(),
                           title=f"Remove {entry.identifier} from the Zero-Touch / Knox list?",
                           message=f"The device with the {kind} {entry.identifier} will then "
                                   "be allowed to enroll with Advanced QR provisioning.",
                           action=url_for("admin.delete_zero_touch_entry", entry_id=entry.id),
                           back=url_for("admin.zero_touch"))


@bp.post("/settings/zero-touch/<id:entry_id>/delete")
@administrator_required
def delete_zero_touch_entry(entry_id):
    try:
        identifier = zero_touch_list.delete_entry(entry_id, actor=current_user.username)
    except zero_touch_list.ZeroTouchError as error:
        return refused(error.message, T + "zero_touch.html", **_context())
    return saved(f"{identifier} is removed from the Zero-Touch / Knox list.", "admin.zero_touch")
