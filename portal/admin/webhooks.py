"""Admin → Webhooks: the endpoints (add with the secret shown once, enable, disable, rotate the
secret, delete)
and the last deliveries with their answers and "Send again". Administrators only."""
from functools import partial

from flask import abort, current_app, flash, render_template, request, url_for
from flask_login import current_user

from portal.accounts.decorators import administrator_required
from portal.admin import bp
from portal.admin.forms import EmptyForm
from portal.admin.webhook_forms import RotateSecretForm, WebhookEndpointForm
from portal.audit.log import record
from portal.database import db
from portal.web.forms import show_errors
from portal.web.htmx import go, refused, render, saved
from portal.web.pagination import paginate
from portal.webhooks import delivery as webhook_delivery
from portal.webhooks import endpoints
from portal.webhooks.events import EVENT_TYPES
from portal.webhooks.models import WebhookDelivery, WebhookEndpoint

T = "admin/webhooks/"
DELIVERIES_PAGE_SIZE = 25


def _audit():
    return partial(record, actor_type="admin", actor=current_user.username)


def _context(form=None, **extra):
    page = paginate(endpoints.deliveries(), request.args, DELIVERIES_PAGE_SIZE)
    return {"form": form or WebhookEndpointForm(formdata=None), "action_form": EmptyForm(),
            "endpoints": endpoints.all_endpoints(), "page": page, "event_types": EVENT_TYPES,
            **extra}


@bp.get("/webhooks")
@administrator_required
def webhooks():
    return render(T + "index.html", T + "_deliveries.html", **_context())


@bp.post("/webhooks")
@administrator_required
def add_webhook():
    form = WebhookEndpointForm()
    if form.validate_on_submit():
        try:
            endpoint, secret = endpoints.create_endpoint(
                form.url.data, form.description.data, form.events.data or [],
                actor=current_user.username, audit=_audit())
        except endpoints.WebhookError as error:
            show_errors(form, error.errors)
        else:
            # Not a redirect: the secret is in this answer only, never stored in clear text.
            context = _context(created=endpoint, secret=secret)
            return render(T + "index.html", T + "_created.html", **context)
    else:
        show_errors(form, endpoints.validate(form.url.data or "", form.description.data or "",
                                             form.events.data or []), first_only=True)
    return render(T + "index.html", T + "_form.html", **_context(form)), 422


def _set_enabled(endpoint_id: int, enabled: bool):
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        endpoint = endpoints.set_enabled(endpoint_id, enabled, audit=_audit())
    except endpoints.WebhookError as error:
        return refused(error.message, back=url_for("admin.webhooks"))
    state = "enabled" if enabled else "disabled: it receives no new events"
    return saved(f"The endpoint {endpoint.url} is {state}.", "admin.webhooks",
                 T + "_endpoint_row.html", endpoint=endpoint, action_form=EmptyForm(),
                 event_types=EVENT_TYPES)


@bp.post("/webhooks/<id:endpoint_id>/enable")
@administrator_required
def enable_webhook(endpoint_id):
    return _set_enabled(endpoint_id, True)


@bp.post("/webhooks/<id:endpoint_id>/disable")
@administrator_required
def disable_webhook(endpoint_id):
    return _set_enabled(endpoint_id, False)


@bp.get("/webhooks/<id:endpoint_id>/rotate")
@administrator_required
def confirm_rotate_webhook_secret(endpoint_id):
    endpoint = db.get_or_404(WebhookEndpoint, endpoint_id)
    return render_template(T + "confirm_rotate.html", endpoint=endpoint,
                           form=RotateSecretForm(keep_previous=True),
                           hours=current_app.config["WEBHOOK_SECRET_OVERLAP_HOURS"])


@bp.post("/webhooks/<id:endpoint_id>/rotate")
@administrator_required
def rotate_webhook_secret(endpoint_id):
    form = RotateSecretForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        endpoint, secret = endpoints.rotate_secret(endpoint_id, audit=_audit(),
                                                   keep_previous=form.keep_previous.data)
    except endpoints.WebhookError as error:
        return refused(error.message, back=url_for("admin.webhooks"))
    # Not a redirect: the secret is in this answer only, never stored in clear text.
    return render_template(T + "index.html", **_context(rotated=endpoint, secret=secret))


@bp.get("/webhooks/<id:endpoint_id>/delete")
@administrator_required
def confirm_delete_webhook(endpoint_id):
    endpoint = db.get_or_404(WebhookEndpoint, endpoint_id)
    return render_template("admin/confirm.html", form=EmptyForm(),
                           title=f"Delete the webhook endpoint {endpoint.url}?",
                           message="It receives no more events, and its deliveries (queued "
                                   "ones too) are deleted with it.",
                           action=url_for("admin.delete_webhook", endpoint_id=endpoint.id),
                           back=url_for("admin.webhooks"))


@bp.post("/webhooks/<id:endpoint_id>/delete")
@administrator_required
def delete_webhook(endpoint_id):
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        url = endpoints.delete_endpoint(endpoint_id, audit=_audit())
    except endpoints.WebhookError as error:
        return refused(error.message, back=url_for("admin.webhooks"))
    flash(f"The endpoint {url} is deleted.", "info")
    return go(url_for("admin.webhooks"))  # its deliveries went too: the whole page again


@bp.get("/webhooks/deliveries/<id:delivery_id>/resend")
@administrator_required
def confirm_resend_webhook(delivery_id):
    item = db.get_or_404(WebhookDelivery, delivery_id)
    return render_template(T + "confirm_resend.html", delivery=item, form=EmptyForm())


@bp.post("/webhooks/deliveries/<id:delivery_id>/resend")
@administrator_required
def resend_webhook(delivery_id):
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        item = endpoints.resend(delivery_id, audit=_audit())
    except endpoints.WebhookError as error:
        return refused(error.message, back=url_for("admin.webhooks"))
    webhook_delivery.send_soon(delivery_id=item.id)
    return saved(f"The {item.event_type} event {item.event_id} is queued again for "
                 f"{item.endpoint.url}.", "admin.webhooks", T + "_delivery_row.html",
                 delivery=item, action_form=EmptyForm())
