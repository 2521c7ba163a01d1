"""Admin → Mail (the SMTP server, "Send test mail") and Admin → Outbox (messages, send again)."""
from dataclasses import asdict

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.accounts.decorators import admin_required
from portal.admin import bp
from portal.admin.forms import EmptyForm
from portal.admin.mail_forms import MailSettingsForm, OutboxFilterForm
from portal.database import db
from portal.mail import delivery, server
from portal.mail.models import OutboxMessage
from portal.mail.outbox import KIND_NAMES, OutboxError, listing, resend, status_counts
from portal.mail.smtp import Check
from portal.web.htmx import make_response, render, wants_fragment
from portal.web.pagination import paginate

T = "admin/mail/"
OUTBOX_PAGE_SIZE = 50


def _flash_oob(body: str = "", status: int = 200):
    return make_response(body + render_template("_flash.html", oob=True), status)


# Admin → Mail

def _settings_form() -> MailSettingsForm:
    values = asdict(server.current().values)
    values.pop("password")
    values["timeout"] = max(1, round(values["timeout"]))  # SMTP_TIMEOUT may be a fraction
    return MailSettingsForm(data=values)


def _settings_context(form, **extra):
    return {"form": form, "mail_server": server.current(), **extra}


@bp.route("/settings/mail", methods=["GET", "POST"])
@admin_required
def mail_settings():
    form = _settings_form()
    if form.validate_on_submit():
        try:
            server.save_mail_settings(form.values(), actor=current_user.username)
        except server.MailSettingsError as error:
            _add_errors(form, error.errors)
        else:
            flash("The mail settings are saved." if form.host.data else
                  "The mail settings are saved. No SMTP server is set, so no mail is sent.",
                  "info")
            if not wants_fragment():
                return redirect(url_for("admin.mail_settings"), 303)
            return _flash_oob(render_template(T + "_settings_form.html",
                                              **_settings_context(_settings_form())))
    elif form.is_submitted():
        _add_errors(form, server.validate(form.values()))  # every problem at once
    status = 422 if form.is_submitted() else 200
    return render(T + "settings.html", T + "_settings_form.html",
                  **_settings_context(form)), status


def _add_errors(form: MailSettingsForm, errors: dict[str, str]) -> None:
    for name, message in errors.items():
        field = getattr(form, name)
        if not field.errors:
            field.errors = [*field.errors, message]


@bp.post("/settings/mail/test")
@admin_required
def send_test_mail():
    """Send a test mail with the values in the form (typed password, else the stored one),
    without saving them, and show each step of the conversation."""
    form = _settings_form()
    form.validate_on_submit()
    values = form.values()
    errors = server.validate(values)
    if not values.host:
        errors["host"] = "Enter the SMTP server to test."
    if message := server.address_error(form.test_recipient.data or ""):
        errors["test_recipient"] = "Enter the address to send the test mail to. " + message
    if errors:
        checks = [Check("Settings", False, " ".join(errors.values()))]
    else:
        config = server.config_for(values, server.effective_password(values))
        checks = delivery.send_test_mail(config, form.test_recipient.data,
                                         actor=current_user.username)
    result = {"checks": checks, "ok": all(check.ok for check in checks),
              "to": form.test_recipient.data}
    if wants_fragment():
        return render_template(T + "_test_result.html", **result)
    return render_template(T + "settings.html", **_settings_context(form, test=result))


# Admin → Outbox

def _outbox_context():
    filters = OutboxFilterForm(formdata=request.args)
    status = filters.status.data if filters.validate() else ""
    page = paginate(listing(status or None), request.args.get("page", 1, type=int),
                    OUTBOX_PAGE_SIZE, scalars=False)
    return {"filters": filters, "status": status, "page": page, "counts": status_counts(),
            "kinds": KIND_NAMES, "form": EmptyForm(), "mail_server": server.current()}


@bp.get("/outbox")
@admin_required
def outbox():
    return render(T + "outbox.html", T + "_outbox_table.html", **_outbox_context())


@bp.get("/outbox/<int:message_id>/resend")
@admin_required
def confirm_resend_message(message_id):
    message = db.get_or_404(OutboxMessage, message_id)
    return render_template(T + "confirm_resend.html", message=message, form=EmptyForm(),
                           kinds=KIND_NAMES)


@bp.post("/outbox/<int:message_id>/resend")
@admin_required
def resend_message(message_id):
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        message = resend(message_id, actor=current_user.username)
    except OutboxError as error:
        flash(str(error), "error")
        if not wants_fragment():
            return redirect(url_for("admin.outbox"), 303)
        response = _flash_oob(status=422)
        response.headers["HX-Reswap"] = "none"
        return response
    delivery.send_soon(message_id=message.id)
    flash(f"The message to {message.recipient} is queued again.", "info")
    if not wants_fragment():
        return redirect(url_for("admin.outbox"), 303)
    row = render_template(T + "_outbox_row.html", message=message,
                          public_id=message.qr_code.public_id if message.qr_code else None,
                          kinds=KIND_NAMES, form=EmptyForm())
    return _flash_oob(row)
