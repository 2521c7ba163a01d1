"""Admin → Mail (the SMTP server, "Send test mail") and Admin → Outbox (messages, send again)."""
from dataclasses import asdict

from flask import abort, render_template, request, url_for
from flask_login import current_user

from portal.accounts.decorators import admin_required, administrator_required
from portal.admin import bp
from portal.admin.forms import EmptyForm
from portal.admin.mail_forms import MailSettingsForm, OutboxFilterForm
from portal.database import db
from portal.mail import delivery, server
from portal.mail.models import OutboxMessage
from portal.mail.outbox import KIND_NAMES, OutboxError, listing, resend, status_counts
from portal.web.forms import show_errors
from portal.web.htmx import refused, render, saved
from portal.web.pagination import paginate

T = "admin/mail/"
OUTBOX_PAGE_SIZE = 50


# Admin → Mail

def _settings_form() -> MailSettingsForm:
    values = asdict(server.current().values)
    values.pop("password")
    values["timeout"] = max(1, round(values["timeout"]))  # SMTP_TIMEOUT may be a fraction
    return MailSettingsForm(data=values)


def _settings_context(form, **extra):
    return {"form": form, "mail_server": server.current(), **extra}


@bp.route("/settings/mail", methods=["GET", "POST"])
@administrator_required
def mail_settings():
    form = _settings_form()
    if form.validate_on_submit():
        try:
            server.save_mail_settings(form.values(), actor=current_user.username)
        except server.MailSettingsError as error:
            show_errors(form, error.errors)
        else:
            return saved("The mail settings are saved." if form.host.data else
                         "The mail settings are saved. No SMTP server is set, so no mail is "
                         "sent.", "admin.mail_settings", T + "_settings_form.html",
                         **_settings_context(_settings_form()))
    elif form.is_submitted():
        show_errors(form, server.validate(form.values()), first_only=True)  # all at once
    status = 422 if form.is_submitted() else 200
    return render(T + "settings.html", T + "_settings_form.html",
                  **_settings_context(form)), status


@bp.post("/settings/mail/test")
@administrator_required
def send_test_mail():
    """Send a test mail with the values in the form (typed password, else the stored one),
    without saving them, and show each step of the conversation."""
    form = _settings_form()
    form.validate_on_submit()
    to = form.test_recipient.data or ""
    checks = delivery.try_mail_settings(form.values(), to, actor=current_user.username)
    result = {"checks": checks, "ok": all(check.ok for check in checks),
              "to": form.test_recipient.data}
    return render(T + "settings.html", T + "_test_result.html",
                  **_settings_context(form, test=result), **result)


# Admin → Outbox

def _outbox_context():
    filters = OutboxFilterForm(formdata=request.args)
    status = filters.status.data if filters.validate() else ""
    page = paginate(listing(status or None), request.args, OUTBOX_PAGE_SIZE, scalars=False)
    return {"filters": filters, "status": status, "page": page, "counts": status_counts(),
            "kinds": KIND_NAMES, "form": EmptyForm(), "mail_server": server.current()}


@bp.get("/outbox")
@administrator_required
def outbox():
    return render(T + "outbox.html", T + "_outbox_table.html", **_outbox_context())


@bp.get("/outbox/<id:message_id>/resend")
@admin_required
def confirm_resend_message(message_id):
    message = db.get_or_404(OutboxMessage, message_id)
    return render_template(T + "confirm_resend.html", message=message, form=EmptyForm(),
                           kinds=KIND_NAMES)


@bp.post("/outbox/<id:message_id>/resend")
@admin_required
def resend_message(message_id):
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        message = resend(message_id, actor=current_user.username)
    except OutboxError as error:
        return refused(error.message, back=url_for("admin.outbox"))
    delivery.send_soon(message_id=message.id)
    return saved(f"The message to {message.recipient} is queued again.", "admin.outbox",
                 T + "_outbox_row.html", message=message,
                 public_id=message.qr_code.public_id if message.qr_code else None,
                 kinds=KIND_NAMES, form=EmptyForm())
