"""Devices → Pending → Advanced QR-Code Provisioning: the wizard, review, downloads, revoke."""
import sqlalchemy as sa
from flask import (Response, abort, current_app, flash, redirect, render_template, request,
                   url_for)
from flask_login import current_user
from flask_babel import force_locale
from markupsafe import Markup, escape

from portal.accounts.decorators import (admin_required, administrator_required,
                                        is_administrator, may_open)
from portal.accounts.directory import picked_user, pick_token, search_directory
from portal.accounts.users import search_local_users
from portal.admin import bp
from portal.amapi.client import is_configured as amapi_configured
from portal.amapi.tasks import owed_for_qr_code
from portal.audit.history import recent_changes
from portal.admin.forms import (EmptyForm, ExtendForm, LocalUserSearchForm, QrCodeForm,
                                RegenerateForm)
from portal.android import qr as qr_images
from portal.database import db
from portal.directory.ldap import DirectoryError, DirectoryUnavailable, InvalidCredentials
from portal.enrollment.models import PendingEnrollment, QrCode, is_public_id
from portal.i18n import fallback_language, page_language
from portal.enrollment.pending import (LIST_ORDER, AlreadyRevoked, current_figures,
                                       pending_counts, pending_enrollments)
from portal.enrollment.pending import revoke_qr_code as revoke
from portal.mail.delivery import send_soon
from portal.mail.outbox import KIND_NAMES, messages_for_qr_code
from portal.android.options import ANDROID_VERSION, time_zones
from portal.android.payload import MAX_PAYLOAD_BYTES, WARN_VERSION
from portal.provisioning import export, printing, review, wizard
from portal.provisioning.listing import device_counts, list_state, staleness
from portal.provisioning.pending_actions import (PendingActionError, ResetMeanwhile,
                                                 extend_otp, mail_again, reset_otp)
from portal.provisioning.pending_actions import delete_pending as delete_one
from portal.provisioning.qr_codes import ProvisioningError
from portal.provisioning.regenerate import RegenerateError, regenerate_qr_code as regenerate
from portal.provisioning.qr_codes import create_qr_code as create
from portal.provisioning.qr_codes import UNLIMITED, usage_count_rule, validate_request, view_otp
from portal.provisioning.qr_codes import density as qr_density
from portal.settings import companion, localizations, network_profiles, otp_policy
from portal.settings import sign_in as sign_in_settings
from portal.vocabulary import EnrollmentOption
from portal.web.forms import show_errors
from portal.web.htmx import go, refused, render
from portal.web.pagination import keyset

OTP_PAGE_SIZE = 50


@bp.app_template_filter("figure")
def figure(value) -> str:
    """One way to show a count or license figure: with thousands separators ("148,534")."""
    return "—" if value is None else f"{value:,}"


@bp.context_processor
def role_checks() -> dict:
    return {"is_administrator": is_administrator, "may_open": may_open}


def _form(**options) -> QrCodeForm:
    form = QrCodeForm(**options)
    # Without the Android Management API, Android Device Policy is shown (so the admin learns
    # it exists and where to set it up) but disabled: it cannot be chosen by mistake.
    form.adp_ready = amapi_configured()
    form.lang.choices = [_localization_choice(loc.tag, loc.name)
                         for loc in localizations.all_localizations()]
    form.has_directory = sign_in_settings.current().ldap is not None
    profiles = network_profiles.all_profiles()
    form.has_profiles = bool(profiles)
    form.network_profile.choices = [("", "Choose a profile")] + [
        (str(profile.id), f"{profile.name} — {network_profiles.describe(profile)}")
        for profile in profiles]
    return form


def _localization_choice(tag: str, name: str) -> tuple:
    """A localization without translations says, in its option, where it falls back to."""
    fallback = fallback_language(tag)
    if fallback is None:
        return tag, f"{name} ({tag})"
    return tag, f"{name} ({tag}) · pages and mail in {fallback}", {"data-fallback": fallback}


def amapi_settings_url() -> str | None:
    """Admin → Android Management API, for those who may open it (None: no link)."""
    return url_for("admin.amapi_settings") if may_open("admin.amapi_settings") else None


def _wizard_context(form: QrCodeForm, **extra) -> dict:
    config, figures = companion.current(), current_figures()
    return {"form": form, "state": form.state, "figures": figures,
            "amapi_settings_url": amapi_settings_url(),
            "usage_rule": usage_count_rule(figures.remaining),
            "companion": config, "example_companion": companion.is_example(config),
            "picked": picked_user(form.ldap_user.data), "time_zones": sorted(time_zones()),
            "android_version": ANDROID_VERSION, **_version_context(form, None), **extra}


def _version_context(form: QrCodeForm, sizes) -> dict:
    """The live QR version indicator's values (sizes: the secrets' sizes, when typed)."""
    request_ = wizard.sizing_request(form.data, sizes) if sizes is not None else \
        form.to_request()
    found = qr_density(request_, server_url=current_app.config["PORTAL_PUBLIC_URL"])
    label = None
    if found is not None:
        label = form[found.densest].label.text if found.densest in form else \
            "the portal's own values"
    return {"density": found, "densest_label": label, "warn_version": WARN_VERSION,
            "max_payload": MAX_PAYLOAD_BYTES,
            "estimated": sizes is not None and any(
                sizes.get(f"{name}_bytes") for name in ("wifi_ca_certificate",
                                                        "wifi_user_certificate"))}


def _directory_search(form: QrCodeForm) -> dict:
    """User Type LDAP: search with the credentials typed into the wizard (used only here)."""
    config = sign_in_settings.current().ldap
    query, bind, password = form.ldap_query.data or "", form.ldap_bind.data or "", \
        form.ldap_password.data or ""
    if config is None:
        return {}
    if not (bind and password and query):
        return {"search_error": "Enter the bind DN or user name, the LDAP password and part of "
                                "the user's name, then search."}
    try:
        found = search_directory(config, bind, password, query, actor=current_user.username)
    except DirectoryError as error:
        return {"search_error": _search_error(error)}
    return {"found": [(pick_token(user), user) for user in found], "searched": query}


def _search_error(error: DirectoryError) -> str:
    if isinstance(error, InvalidCredentials):
        return "The directory refused these administrative credentials."
    if isinstance(error, DirectoryUnavailable):
        return f"The directory cannot be reached: {error.cause}"
    return f"The directory search failed: {error.cause}"


@bp.get("/devices/pending/new")
@admin_required
def new_qr_code():
    return render_template("admin/qr_codes/new.html", **_wizard_context(_form()))


@bp.get("/devices/pending/new/qr-version")
@admin_required
def qr_code_version():
    """The wizard's live QR version, from the values typed so far (secrets only as sizes).
    A read: nothing is validated into the database, recorded or saved."""
    form = _form(formdata=request.args, meta={"csrf": False})
    return render_template("admin/qr_codes/_qr_version.html",
                           **_version_context(form, request.args))


@bp.post("/devices/pending/new/directory-users")
@admin_required
def search_directory_users():
    """Search directory: htmx swaps in only the results; without JavaScript the whole wizard
    comes back with them (the typed passwords are not sent back)."""
    form = _form()
    form.validate_on_submit()
    found = _directory_search(form)
    return render("admin/qr_codes/new.html", "admin/qr_codes/_ldap_results.html",
                  **_wizard_context(form, **found))


@bp.post("/devices/pending")
@admin_required
def create_qr_code():
    form, server_url = _form(), current_app.config["PORTAL_PUBLIC_URL"]
    if not form.validate_on_submit():  # the domain's checks too: every message in one pass
        return _refused(form, validate_request(form.to_request(), server_url=server_url,
                                               created_by=current_user))
    try:
        qr_code = create(form.to_request(), created_by=current_user, server_url=server_url)
    except ProvisioningError as exc:
        return _refused(form, exc.errors)
    send_soon(qr_code_id=qr_code.id)  # after the response; the worker covers any failure
    flash("The QR code was saved.", "info")
    return go(url_for("admin.qr_code", public_id=qr_code.public_id))


def _refused(form: QrCodeForm, errors: dict[str, str]):
    """422: htmx gets the error summary and every field's error region, leaving the inputs
    (and whatever was typed meanwhile) alone; a plain POST gets the whole wizard again."""
    if errors.get("otp_validity") and form.to_request().otp_validity == UNLIMITED:
        errors = dict(errors)  # the message goes beside the Unlimited box that was ticked
        errors["otp_unlimited"] = errors.pop("otp_validity")
    show_errors(form, {name: message for name, message in errors.items()
                       if name not in form or not form[name].errors})
    return render("admin/qr_codes/new.html", "admin/qr_codes/_refused.html",
                  **_wizard_context(form)), 422


@bp.get("/users/search")
@admin_required
def search_users():
    form = LocalUserSearchForm(formdata=request.args)
    query = (form.username.data or "") if form.validate() else ""
    return render_template("admin/qr_codes/_user_results.html",
                           users=search_local_users(query), query=query)


def _load(public_id: str) -> QrCode:
    if not is_public_id(public_id):
        abort(404)
    return db.first_or_404(sa.select(QrCode).where(QrCode.public_id == public_id))


def _gone(qr: QrCode):
    """A revoked QR code's image or printable sheet: 410 Gone, with a page that says why."""
    return render_template("admin/qr_codes/gone.html", qr=qr), 410


@bp.get("/qr-codes/<public_id>")
@admin_required
def qr_code(public_id):
    qr = _load(public_id)
    messages, counts = messages_for_qr_code(qr), pending_counts(qr)
    state = list_state(qr, counts["pending"], counts["expired"])
    devices = device_counts([qr.id]).get(qr.id, 0)
    return render_template("admin/qr_codes/detail.html", qr=qr, info=review.summary(qr),
                           state=state, devices=devices,
                           stale=staleness(qr, state, companion.current()),
                           form=EmptyForm(), mail_messages=messages, mail_kinds=KIND_NAMES,
                           mail_lines=review.mail_lines(qr, messages),
                           language=review.language_name(qr.lang),
                           history=recent_changes(qr.public_id, "qr_code", "pending"),
                           name=qr.public_id, warn_version=WARN_VERSION,
                           owed=owed_for_qr_code(qr.id))


@bp.get("/qr-codes/<public_id>/qr-code.<any(png, svg):kind>")
@admin_required
def qr_code_image(public_id, kind):
    qr = _load(public_id)
    if qr.is_revoked:
        return _gone(qr)
    text = qr.payload_text()
    body = qr_images.render_png(text) if kind == "png" else qr_images.render_svg(text)
    response = Response(body, mimetype="image/png" if kind == "png" else "image/svg+xml")
    if request.args.get("download"):
        response.headers["Content-Disposition"] = (
            f'attachment; filename="qr-code-{qr.public_id}.{kind}"')
    return response


@bp.get("/qr-codes/<public_id>/print")
@admin_required
def print_qr_code(public_id):
    qr = _load(public_id)
    if qr.is_revoked:
        return _gone(qr)
    # The sheet goes to the device's user: in the QR's language, whatever the admin's browser.
    with force_locale(page_language(qr.lang)):
        name = (qr.user.display_name or qr.user.username) if qr.user else ""
        return render_template("admin/qr_codes/print.html", qr=qr, info=review.summary(qr),
                               lang=page_language(qr.lang),
                               follow=Markup(printing.follow_step(qr, name=escape(name))))


@bp.post("/qr-codes/<public_id>/otp")
@admin_required
def view_qr_code_otp(public_id):
    qr = _load(public_id)
    if qr.option != EnrollmentOption.AUTO or not EmptyForm().validate_on_submit():
        abort(400)
    return _otp_panel(qr, view_otp(qr, viewed_by=current_user))


@bp.get("/qr-codes/<public_id>/revoke")
@admin_required
def confirm_revoke_qr_code(public_id):
    qr = _load(public_id)
    return render_template("admin/qr_codes/revoke.html", qr=qr, form=EmptyForm(),
                           counts=pending_counts(qr))


@bp.post("/qr-codes/<public_id>/revoke")
@admin_required
def revoke_qr_code(public_id):
    qr = _load(public_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        released = revoke(qr, revoked_by=current_user)
        flash(f"The QR code was revoked; {released} license{'s' if released != 1 else ''} "
              "returned to the pool.", "info")
    except AlreadyRevoked as exc:
        flash(str(exc), "error")
    return go(url_for("admin.qr_code", public_id=qr.public_id))


def _otp_panel(qr: QrCode, otp: str, **extra):
    page = keyset(pending_enrollments(qr), LIST_ORDER, request.args,
                  OTP_PAGE_SIZE, descending=False)
    return render("admin/qr_codes/otp.html", "admin/qr_codes/_otp.html", qr=qr, otp=otp,
                  page=page, counts=pending_counts(qr), form=EmptyForm(), **extra)


def _back_to(qr: QrCode) -> str:
    return url_for("admin.qr_code", public_id=qr.public_id)


@bp.get("/qr-codes/<public_id>/otp/reset")
@admin_required
def confirm_reset_qr_code_otp(public_id):
    qr = _load(public_id)
    return render_template("admin/qr_codes/reset.html", qr=qr, form=EmptyForm(),
                           counts=pending_counts(qr), policy=otp_policy.current())


@bp.post("/qr-codes/<public_id>/otp/reset")
@admin_required
def reset_qr_code_otp(public_id):
    qr = _load(public_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        otp = reset_otp(qr, reset_by=current_user)
    except ResetMeanwhile as exc:  # another admin's reset won: theirs is shown
        return _otp_panel(qr, exc.otp, reset=True, notice=exc.message)
    except PendingActionError as exc:
        return refused(exc.message, back=_back_to(qr))
    return _otp_panel(qr, otp, reset=True)


@bp.post("/qr-codes/<public_id>/mail")
@admin_required
def mail_qr_code_again(public_id):
    qr = _load(public_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        queued = mail_again(qr, sent_by=current_user)
    except PendingActionError as exc:
        return refused(exc.message, back=_back_to(qr))
    send_soon(qr_code_id=qr.id)
    flash(f"{queued} message{'s' if queued != 1 else ''} queued: the QR code is mailed again."
          if queued else "Nobody to mail: no Mail recipient, user address or alternative "
          "address is set.", "info")
    return go(_back_to(qr))


def _load_pending(qr: QrCode, pending_id: int) -> PendingEnrollment:
    pending = db.session.get(PendingEnrollment, pending_id)
    if pending is None or pending.qr_code_id != qr.id:
        abort(404)
    return pending


@bp.get("/qr-codes/<public_id>/pending/<id:pending_id>/delete")
@administrator_required
def confirm_delete_pending(public_id, pending_id):
    qr = _load(public_id)
    return render_template("admin/qr_codes/delete_pending.html", qr=qr, form=EmptyForm(),
                           pending=_load_pending(qr, pending_id))


@bp.post("/qr-codes/<public_id>/pending/<id:pending_id>/delete")
@administrator_required
def delete_pending(public_id, pending_id):
    qr = _load(public_id)
    _load_pending(qr, pending_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        delete_one(qr, pending_id, deleted_by=current_user)
    except PendingActionError as exc:
        return refused(exc.message, back=_back_to(qr))
    flash(f"A pending enrollment of QR code {qr.name or qr.public_id} was deleted; "
          "1 license returned to the pool.", "info")
    return go(_back_to(qr))


@bp.get("/qr-codes/<public_id>/extend")
@administrator_required
def extend_qr_code_otp(public_id):
    qr = _load(public_id)
    return render_template("admin/qr_codes/extend.html", qr=qr, form=ExtendForm(),
                           counts=pending_counts(qr))


@bp.post("/qr-codes/<public_id>/extend")
@administrator_required
def save_extend_qr_code_otp(public_id):
    qr, form = _load(public_id), ExtendForm()
    if form.validate_on_submit():
        try:
            moved = extend_otp(qr, form.to_extension(), extended_by=current_user)
        except PendingActionError as exc:
            show_errors(form, exc.errors)
        else:
            flash(f"The OTP's expiry changed for {moved:,} pending enrollment"
                  f"{'s' if moved != 1 else ''}.", "info")
            return go(_back_to(qr))
    elif "csrf_token" in form.errors:
        abort(400)
    return render_template("admin/qr_codes/extend.html", qr=qr, form=form,
                           counts=pending_counts(qr)), 422


# Stale QR codes: Regenerate (a new QR code with the same settings; the old one revoked).

@bp.get("/qr-codes/<public_id>/regenerate")
@admin_required
def confirm_regenerate_qr_code(public_id):
    qr = _load(public_id)
    if qr.is_revoked:
        flash("This QR code is revoked: there is nothing to regenerate. Create a new QR code "
              "instead.", "error")
        return redirect(_back_to(qr))
    counts = pending_counts(qr)
    state = list_state(qr, counts["pending"], counts["expired"])
    return render_template("admin/qr_codes/regenerate.html", qr=qr, form=RegenerateForm(),
                           counts=counts, stale=staleness(qr, state, companion.current()),
                           title=f"Regenerate QR code {qr.name or qr.public_id}?",
                           action=url_for("admin.regenerate_qr_code", public_id=qr.public_id),
                           button="Regenerate", back=_back_to(qr))


@bp.post("/qr-codes/<public_id>/regenerate")
@admin_required
def regenerate_qr_code(public_id):
    qr, form = _load(public_id), RegenerateForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        new = regenerate(qr, regenerated_by=current_user, mail=bool(form.mail.data),
                         server_url=current_app.config["PORTAL_PUBLIC_URL"])
    except RegenerateError as exc:
        return refused(exc.message, back=_back_to(qr))
    if form.mail.data:
        send_soon(qr_code_id=new.id)
    moved = f" and its {new.usage_count:,} waiting pending enrollment" \
        f"{'s' if new.usage_count != 1 else ''} (licenses carried over)" if new.usage_count else ""
    flash(f"QR code {qr.public_id} was revoked; this new QR code replaces it with today's "
          f"Companion{moved}. Print or send it again.", "info")
    return go(_back_to(new))


# Export: the payload as JSON; secrets only after confirmation, recorded like View OTP.

def _json_download(text: str, filename: str) -> Response:
    return Response(text, mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store"})


@bp.get("/qr-codes/<public_id>/payload.json")
@admin_required
def qr_code_payload(public_id):
    qr = _load(public_id)
    if qr.is_revoked:
        return _gone(qr)
    text, _ = export.redacted_payload(qr)
    return _json_download(text, f"qr-code-{qr.public_id}-payload-secrets-redacted.json")


@bp.get("/qr-codes/<public_id>/payload-with-secrets")
@admin_required
def confirm_qr_code_payload_with_secrets(public_id):
    qr = _load(public_id)
    if qr.is_revoked:
        return _gone(qr)
    names = export.secret_names(qr)
    held = " and ".join(filter(None, (", ".join(names[:-1]), names[-1]))) if names else \
        "no secret (this QR code carries none)"
    return render_template(
        "admin/confirm.html", form=EmptyForm(), download=True, button="Export with secrets",
        title=f"Export QR code {qr.name or qr.public_id} with its secrets?",
        message=(f"The JSON file will hold {held} in clear text, as the QR code itself does. "
                 "The audit log records that you exported it. Keep the file as safe as the "
                 "printed QR code."),
        action=url_for("admin.download_qr_code_payload_with_secrets", public_id=qr.public_id),
        back=_back_to(qr))


@bp.post("/qr-codes/<public_id>/payload-with-secrets")
@admin_required
def download_qr_code_payload_with_secrets(public_id):
    qr = _load(public_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    if qr.is_revoked:
        return _gone(qr)
    text = export.full_payload(qr, exported_by=current_user)
    return _json_download(text, f"qr-code-{qr.public_id}-payload-with-secrets.json")
