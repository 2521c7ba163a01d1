"""Devices → Pending → Bulk provisioning (upload, preview, confirm) and the batches' pages."""
from flask import Response, abort, current_app, flash, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import BuildError
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import Length, NumberRange, Optional

from portal.accounts.decorators import admin_required, is_administrator
from portal.admin import bp
from portal.admin.forms import EmptyForm
from portal.admin.zero_touch import request_too_large
from portal.enrollment.pending import current_figures
from portal.provisioning import bulk
from portal.provisioning.listing import qr_code_rows
from portal.provisioning.printing import print_parts
from portal.provisioning.qr_codes import UNLIMITED, UNLIMITED_FOR_ADMINISTRATORS
from portal.settings import network_profiles
from portal.settings import sign_in as sign_in_settings
from portal.vocabulary import MANAGEMENT_LABELS
from portal.web.forms import show_errors, strip
from portal.web.htmx import go, render
from portal.web.pagination import paginate
from portal.web.uploads import allows_upload

T = "admin/bulk/"
PAGE_SIZE = 50
SHOWN_ROWS = 200     # the preview shows rows with problems first, then the others, up to this
SHOWN_PROBLEMS = 200


class BulkForm(FlaskForm):
    file = FileField("CSV file", render_kw={"accept": ".csv,text/csv"})
    network_profile = SelectField("Network profile", choices=[], validate_choice=False)
    otp_validity = IntegerField("OTP validity (hours)", validators=[
        Optional(), NumberRange(min=1, max=87600,
                                message="The OTP validity must be 1 to 87,600 hours.")])
    otp_unlimited = BooleanField("Unlimited")
    # Rows whose management cell is empty; "": the network profile's.
    management = SelectField("Management", choices=[("", "The network profile's")] + list(
        MANAGEMENT_LABELS.items()), default="", validate_choice=False)
    ldap_bind = StringField("Bind DN or user name", filters=[strip],
                            validators=[Optional(), Length(max=512)],
                            render_kw={"autocomplete": "off"})
    ldap_password = PasswordField("LDAP password", validators=[Optional(), Length(max=1024)],
                                  render_kw={"autocomplete": "off"})

    def otp_choice(self):
        if self.otp_unlimited.data:
            return UNLIMITED
        return self.otp_validity.data

    def management_choice(self):
        return self.management.data or None


def _form(**options) -> BulkForm:
    form = BulkForm(**options)
    form.network_profile.choices = [("", "Choose a network profile")] + [
        (str(profile.id), profile.name) for profile in network_profiles.all_profiles()]
    return form


def _context(form: BulkForm, **extra) -> dict:
    return {"form": form, "figures": current_figures(),
            "has_profiles": len(form.network_profile.choices) > 1,
            "has_directory": sign_in_settings.current().ldap is not None,
            "profiles_url": _profiles_url(),
            "max_rows": bulk.MAX_ROWS, "columns": bulk.COLUMNS, **extra}


def _profiles_url() -> str | None:
    """Admin → Network profiles, for an Administrator (None: not for this admin)."""
    if not is_administrator():
        return None
    try:
        return url_for("admin.network_profiles")
    except BuildError:
        return None


@bp.get("/devices/pending/bulk")
@admin_required
def bulk_provisioning():
    return render_template(T + "new.html", **_context(_form(formdata=None)))


@bp.get("/devices/pending/bulk/template.csv")
@admin_required
def bulk_template():
    return Response(bulk.TEMPLATE, mimetype="text/csv", headers={
        "Content-Disposition": 'attachment; filename="bulk-provisioning-template.csv"'})


def _upload_limit() -> int:
    return bulk.MAX_BYTES + 64 * 1024  # the file, and the form's other fields


@bp.post("/devices/pending/bulk")
@admin_required
@allows_upload(_upload_limit)
def preview_bulk():
    form = _form()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return render_template(T + "new.html", **_context(form)), 422
    errors = _form_errors(form)
    if errors:
        show_errors(form, errors)
        return render_template(T + "new.html", **_context(form)), 422
    try:
        rows = bulk.parse_csv(form.file.data.read())
    except bulk.BulkError as error:
        show_errors(form, {"file": " ".join(str(problem) for problem in error.problems)})
        return render_template(T + "new.html", **_context(form)), 422
    preview = bulk.preview_rows(
        rows, network_profile_id=form.network_profile.data, otp_validity=form.otp_choice(),
        created_by=current_user, server_url=current_app.config["PORTAL_PUBLIC_URL"],
        directory=_directory(form), management=form.management_choice())
    staged = None
    if preview.ok:
        staged = bulk.stage(preview, name=form.file.data.filename,
                            network_profile_id=form.network_profile.data,
                            otp_validity=form.otp_choice(), created_by=current_user)
    return render_template(T + "new.html", **_context(
        form, preview=preview, staged=staged, shown=_shown_rows(preview),
        shown_problems=SHOWN_PROBLEMS, shown_rows=SHOWN_ROWS,
        profile=network_profiles.get(form.network_profile.data),
        management_label=bulk.management_label,
        confirm_form=EmptyForm())), 200 if preview.ok else 422


def _form_errors(form: BulkForm) -> dict[str, str]:
    errors = {}
    if not form.file.data or not form.file.data.filename:
        errors["file"] = "Choose the CSV file to upload."
    if network_profiles.get(form.network_profile.data) is None:
        errors["network_profile"] = "Choose one of the saved network profiles."
    if form.otp_unlimited.data and not is_administrator():
        errors["otp_unlimited"] = UNLIMITED_FOR_ADMINISTRATORS
    return errors


def _directory(form: BulkForm) -> bulk.Directory | None:
    """The Administrative LDAP credentials typed on this form: for this request only."""
    config = sign_in_settings.current().ldap
    if config is None or not form.ldap_bind.data or not form.ldap_password.data:
        return None
    return bulk.Directory(config, form.ldap_bind.data, form.ldap_password.data)


def _shown_rows(preview: bulk.Preview) -> list[bulk.Row]:
    ordered = [row for row in preview.rows if not row.ok] + \
        [row for row in preview.rows if row.ok]
    return ordered[:SHOWN_ROWS]


@bp.errorhandler(RequestEntityTooLarge)
def bulk_file_too_large(error):
    # Raised while the CSRF check reads the body, before the view: nothing is read whole.
    if request.endpoint != "admin.preview_bulk":
        return request_too_large(error)
    form = _form(formdata=None)
    show_errors(form, {"file": f"The file is larger than {bulk.MAX_BYTES // 2**20} MB; split "
                               "it into smaller files."})
    return render_template(T + "new.html", **_context(form)), 422


@bp.post("/devices/pending/bulk/<staged_id>/confirm")
@admin_required
def confirm_bulk(staged_id):
    staged = bulk.find_staged(staged_id, current_user)
    if staged is None:
        abort(404)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        batch = bulk.start_batch(staged, created_by=current_user)
    except bulk.BulkError as error:
        flash(error.message, "error")
        return go(url_for("admin.bulk_provisioning"))
    _run(batch)
    return go(url_for("admin.batch", batch_id=batch.public_id))


def _run(batch) -> None:
    bulk.start_running(batch, server_url=current_app.config["PORTAL_PUBLIC_URL"])


# The batches

@bp.get("/batches")
@admin_required
def batches():
    page = paginate(bulk.batches(), request.args, PAGE_SIZE)
    return render(T + "batches.html", T + "_batch_table.html", page=page,
                  states={batch.id: bulk.display_state(batch) for batch in page.items})


def _load(batch_id: str):
    batch = bulk.find_batch(batch_id)
    if batch is None:
        abort(404)
    return batch


@bp.get("/batches/<batch_id>")
@admin_required
def batch(batch_id):
    batch = _load(batch_id)
    page = paginate(bulk.batch_qr_codes(batch), request.args, PAGE_SIZE)
    rows = qr_code_rows(page.items)
    totals = bulk.totals(batch)
    return render(T + "batch.html", T + "_batch_qr_codes.html", batch=batch, page=page,
                  rows=rows, mail=bulk.mail_statuses([qr.id for qr in page.items]),
                  totals=totals, state=bulk.display_state(batch),
                  profile=network_profiles.get(batch.network_profile_id),
                  form=EmptyForm(), print_parts=print_parts(totals["active"]))


@bp.get("/batches/<batch_id>/progress")
@admin_required
def batch_progress(batch_id):
    batch = _load(batch_id)
    return render_template(T + "_progress.html", batch=batch, state=bulk.display_state(batch),
                           form=EmptyForm())


@bp.post("/batches/<batch_id>/restart")
@admin_required
def restart_batch(batch_id):
    batch = _load(batch_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    if bulk.restart(batch):
        _run(batch)
    else:
        flash("This batch is not interrupted: it is running or finished.", "error")
    return go(url_for("admin.batch", batch_id=batch.public_id))


@bp.get("/batches/<batch_id>/revoke")
@admin_required
def confirm_revoke_batch(batch_id):
    batch = _load(batch_id)
    totals = bulk.totals(batch)
    return render_template(
        "admin/confirm.html", form=EmptyForm(), button="Revoke batch",
        title=f"Revoke batch {batch.name or batch.public_id}?",
        message=(f"Its {totals['active']:,} active QR code{'s' if totals['active'] != 1 else ''}"
                 f" stop working at once and their {totals['pending']:,} waiting pending "
                 "enrollments end, returning their licenses to the pool. Devices already "
                 "enrolled keep working. This cannot be undone."),
        action=url_for("admin.revoke_batch", batch_id=batch.public_id),
        back=url_for("admin.batch", batch_id=batch.public_id))


@bp.post("/batches/<batch_id>/revoke")
@admin_required
def revoke_batch(batch_id):
    batch = _load(batch_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    revoked, released = bulk.revoke_batch(batch, revoked_by=current_user)
    flash(f"{revoked:,} QR code{'s' if revoked != 1 else ''} of the batch revoked; "
          f"{released:,} license{'s' if released != 1 else ''} returned to the pool.", "info")
    return go(url_for("admin.batch", batch_id=batch.public_id))
