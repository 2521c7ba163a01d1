"""The Admin API's endpoints: QR codes (create, list, get, images, payload, revoke, pending
enrollments), devices (list, search, get, retire), the license figures. Each parses, calls the
console's own domain function, and answers JSON."""
import json

import sqlalchemy as sa
from flask import Response, current_app, jsonify, request, url_for

from portal import vault
from portal.adminapi import bp
from portal.adminapi.auth import accepts_body, caller, needs
from portal.adminapi.errors import ApiError, ValidationFailed
from portal.adminapi.schemas import (api_errors, batch_errors, batch_request, json_body,
                                     list_arguments, pager_arguments, qr_code_request)
from portal.android import qr as qr_images
from portal.database import db
from portal.enrollment import devices as fleet
from portal.enrollment import retirement
from portal.enrollment.models import Batch, QrCode, is_public_id
from portal.enrollment.pending import (LIST_ORDER, AlreadyRevoked, current_figures,
                                       pending_counts, pending_enrollments, revoke_qr_code)
from portal.mail.delivery import send_soon
from portal.provisioning import bulk, listing
from portal.settings import network_profiles
from portal.provisioning.qr_codes import GoogleRefused, ProvisioningError, create_qr_code
from portal.vocabulary import ApiScope, EnrollmentOption
from portal.web.pagination import keyset



def _time(value):
    return value.isoformat().replace("+00:00", "Z") if value else None


def _page_json(items: list, page) -> dict:
    return {"items": items, "next_cursor": page.next["after"] if page.next else None}


# QR codes -----------------------------------------------------------------------------------

def _load_qr(public_id: str) -> QrCode:
    qr = db.session.scalar(sa.select(QrCode).where(QrCode.public_id == public_id)) \
        if is_public_id(public_id) else None
    if qr is None:
        raise ApiError(404, "not_found", "There is no QR code with this id.")
    return qr


def _qr_json(qr: QrCode, username: str | None, state: str, counts: dict) -> dict:
    profile = qr.network_profile
    links = {name: url_for(endpoint, public_id=qr.public_id, _external=False)
             for name, endpoint in (("self", "adminapi.get_qr_code"),
                                    ("png", "adminapi.qr_code_png"),
                                    ("svg", "adminapi.qr_code_svg"),
                                    ("payload", "adminapi.qr_code_payload"),
                                    ("pending", "adminapi.qr_code_pending"))}
    return {
        "id": qr.public_id, "option": qr.option, "name": qr.name, "state": state,
        "user": username, "usage_count": qr.usage_count, "localization": qr.lang,
        "send_to_user": qr.send_to_user, "alternative_address": qr.alternative_email,
        "network": {"type": qr.network, "ssid": qr.wifi_ssid, "security": qr.wifi_security,
                    "hidden": bool(qr.wifi_hidden)} if qr.network == "wifi"
        else {"type": qr.network},
        "network_profile": profile.name if profile else None,
        "management": qr.management,
        # Android Device Policy, Automatic Provisioning: Google's token (its value is the OTP).
        "enrollment_token": {"name": qr.enrollment_token_name,
                             "expires_at": _time(qr.otp_expires_at)}
        if qr.enrollment_token_name else None,
        "pending": counts, "qr_version": qr.qr_version,
        "created_at": _time(qr.created_at), "otp_expires_at": _time(qr.otp_expires_at),
        "revoked_at": _time(qr.revoked_at), "links": links}


def _one_qr_json(qr: QrCode) -> dict:
    counts = pending_counts(qr)
    state = listing.list_state(qr, counts["pending"], counts["expired"])
    return _qr_json(qr, qr.user.username if qr.user_id else None, state, counts)


@bp.post("/qr-codes")
@needs(ApiScope.PROVISION)
def create_qr():
    qr_request = qr_code_request(json_body())
    try:
        qr = create_qr_code(qr_request, created_by=None, actor=caller().actor,
                            server_url=current_app.config["PORTAL_PUBLIC_URL"])
    except GoogleRefused as error:  # Google failed, not the request: nothing saved; try again
        raise ApiError(502, "google_failed", error.message,
                       fields={"management": error.message}) from None
    except ProvisioningError as error:
        raise ValidationFailed(api_errors(error.errors)) from None
    send_soon(qr_code_id=qr.id)  # after the response; the outbox worker covers any failure
    response = jsonify(_one_qr_json(qr))
    response.status_code = 201
    response.headers["Location"] = url_for("adminapi.get_qr_code", public_id=qr.public_id)
    return response


@bp.get("/qr-codes")
def list_qr_codes():
    limit, filters = list_arguments(request.args, filters={
        "q": None, "state": listing.STATES + (listing.STALE,),
        "option": tuple(EnrollmentOption), "batch": None})
    batch_id = _load_batch(filters["batch"]).id if filters["batch"] else None
    page = keyset(listing.qr_code_keys(filters["q"], state=filters["state"],
                                       option=filters["option"], batch_id=batch_id),
                  listing.ORDER, pager_arguments(request.args, listing.ORDER), limit,
                  scalars=False)
    items = [_qr_json(qr, username, state, {"pending": pending, "used": used,
                                            "expired": expired, "revoked": revoked})
             for qr, username, pending, used, expired, revoked, _, state, _ in
             listing.qr_code_rows(page.items)]
    return jsonify(_page_json(items, page))


@bp.get("/qr-codes/<public_id>")
def get_qr_code(public_id):
    return jsonify(_one_qr_json(_load_qr(public_id)))


def _live_payload(public_id: str) -> str:
    qr = _load_qr(public_id)
    if qr.is_revoked:
        raise ApiError(410, "qr_revoked", "The QR code is revoked: it has no image or payload.")
    return qr.payload_text()


@bp.get("/qr-codes/<public_id>/qr.png")
@needs(ApiScope.PROVISION)
def qr_code_png(public_id):
    return Response(qr_images.render_png(_live_payload(public_id)), mimetype="image/png",
                    headers={"Cache-Control": "no-store"})


@bp.get("/qr-codes/<public_id>/qr.svg")
@needs(ApiScope.PROVISION)
def qr_code_svg(public_id):
    return Response(qr_images.render_svg(_live_payload(public_id)), mimetype="image/svg+xml",
                    headers={"Cache-Control": "no-store"})


@bp.get("/qr-codes/<public_id>/payload")
@needs(ApiScope.PROVISION)
def qr_code_payload(public_id):
    response = jsonify(json.loads(_live_payload(public_id)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/qr-codes/<public_id>/revoke")
@needs(ApiScope.PROVISION)
def revoke_qr(public_id):
    qr = _load_qr(public_id)
    try:
        released = revoke_qr_code(qr, revoked_by=None, actor=caller().actor)
    except AlreadyRevoked:
        raise ApiError(409, "already_revoked", "This QR code was already revoked.") from None
    return jsonify({"qr_code": _one_qr_json(qr), "licenses_released": released})


@bp.get("/qr-codes/<public_id>/pending")
def qr_code_pending(public_id):
    qr = _load_qr(public_id)
    limit, _ = list_arguments(request.args, filters={})
    page = keyset(pending_enrollments(qr), LIST_ORDER, pager_arguments(request.args, LIST_ORDER),
                  limit, descending=False)
    items = [{"id": pending.id, "state": pending.state, "expires_at": _time(pending.expires_at),
              "used_at": _time(pending.used_at), "ended_at": _time(pending.ended_at),
              "device_id": pending.device.public_id if pending.device else None}
             for pending in page.items]
    body = {"qr_id": qr.public_id, "counts": pending_counts(qr), **_page_json(items, page)}
    # The OTP (the same for every pending enrollment of the QR code) only for `provision`.
    body["otp"] = vault.decrypt(qr.otp_enc) if caller().provisions and qr.otp_enc \
        and not qr.is_revoked else None
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


# Devices ------------------------------------------------------------------------------------

def _device_json(row) -> dict:
    return {"id": row.public_id, "serial_number": row.serial_number, "imei": row.imei,
            "manufacturer": row.manufacturer, "model": row.model,
            "android_api_level": row.android_api_level,
            "android_version": fleet.android_version(row.android_api_level) or None,
            "state": row.state, "user": row.username, "qr_id": row.qr_id,
            "created_at": _time(row.created_at), "enrolled_at": _time(row.enrolled_at),
            "last_contact_at": _time(row.last_contact_at), "retired_at": _time(row.retired_at),
            "management": row.management}


def _load_device(device_id: str) -> dict:
    view = fleet.find_device(device_id)
    if view is None:
        raise ApiError(404, "not_found", "There is no device with this id.")
    return view


def _view_json(view) -> dict:
    device = view.device
    row = type("Row", (), {name: getattr(device, name) for name in (
        "public_id", "serial_number", "imei", "manufacturer", "model", "android_api_level",
        "state", "created_at", "enrolled_at", "last_contact_at", "retired_at")})
    row.username, row.qr_id = view.user.username, view.qr_code.public_id
    row.management = view.qr_code.management
    return _device_json(row)


@bp.get("/devices")
def list_devices():
    limit, filters = list_arguments(request.args, filters={"q": None, "state": fleet.FILTERS})
    page = keyset(fleet.device_keys(filters["q"], filters["state"] or ""), fleet.ORDER,
                  pager_arguments(request.args, fleet.ORDER), limit, scalars=False)
    return jsonify(_page_json([_device_json(row) for row in fleet.device_rows(page.items)],
                              page))


@bp.get("/devices/<device_id>")
def get_device(device_id):
    return jsonify(_view_json(_load_device(device_id)))


@bp.post("/devices/<device_id>/retire")
@needs(ApiScope.PROVISION)
def retire(device_id):
    view = _load_device(device_id)
    try:
        released = retirement.retire_device(view.device, retired_by=None, actor=caller().actor)
    except retirement.AlreadyRetired:
        raise ApiError(409, "already_retired", "This device was already retired.") from None
    return jsonify({"device": _view_json(_load_device(device_id)),
                    "license_released": released})


# Licenses -----------------------------------------------------------------------------------

@bp.get("/licenses")
def licenses():
    figures = current_figures()
    return jsonify(total=figures.total, used=figures.used, reserved=figures.reserved,
                   remaining=figures.remaining)


# Bulk batches --------------------------------------------------------------------------------

BATCH_MAX_BODY = 1024 * 1024


def _load_batch(batch_id: str) -> Batch:
    batch = bulk.find_batch(batch_id) if is_public_id(batch_id) else None
    if batch is None:
        raise ApiError(404, "not_found", "There is no batch with this id.")
    return batch


def _batch_json(batch: Batch) -> dict:
    profile = network_profiles.get(batch.network_profile_id)
    return {"id": batch.public_id, "name": batch.name, "state": bulk.display_state(batch),
            "rows": batch.row_count, "done": batch.done, "error": batch.error,
            "network_profile": profile.name if profile else None,
            "created_by": batch.created_by_name, "created_at": _time(batch.created_at),
            "links": {"self": url_for("adminapi.get_batch", batch_id=batch.public_id),
                      "qr_codes": url_for("adminapi.list_qr_codes", batch=batch.public_id)}}


@bp.post("/batches")
@needs(ApiScope.PROVISION)
@accepts_body(BATCH_MAX_BODY)
def create_batch():
    """A bulk batch from JSON rows, checked and made as Devices → Pending → Bulk provisioning
    makes one from a CSV: every row checked first (422 naming each, nothing saved), then one
    transaction. 201 when it is made at once, 202 while it is made in the background (poll
    its link)."""
    values = batch_request(json_body(), max_rows=bulk.MAX_ROWS)
    server_url = current_app.config["PORTAL_PUBLIC_URL"]
    options = {"network_profile_id": values["network_profile_id"],
               "otp_validity": values["otp_validity"], "created_by": None}
    preview = bulk.preview_rows(values["rows"], server_url=server_url,
                                management=values["management"], **options)
    if not preview.ok:
        raise ValidationFailed(batch_errors(preview.problems))
    staged = bulk.stage(preview, name=values["name"], replace_earlier=False, **options)
    batch = bulk.start_batch(staged, created_by=None,
                             created_by_name=f"API token {caller().name}"[:150])
    batch = bulk.start_running(batch, server_url=server_url, actor=caller().actor)
    if refusal := bulk.google_refusal(batch):
        row, sentence = refusal
        raise ApiError(502, "google_failed", batch.error,
                       fields={f"rows[{row - 1}].management": sentence})
    if batch.state == "failed":
        raise ApiError(409, "batch_failed", batch.error or "The batch could not be made.")
    response = jsonify(_batch_json(batch))
    response.status_code = 201 if batch.state == "created" else 202
    response.headers["Location"] = url_for("adminapi.get_batch", batch_id=batch.public_id)
    return response


@bp.get("/batches/<batch_id>")
def get_batch(batch_id):
    return jsonify(_batch_json(_load_batch(batch_id)))
