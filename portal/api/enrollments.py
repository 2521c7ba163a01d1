"""POST /enrollments, POST /devices/{id}/provisioning-complete, GET /devices/{id}."""
from flask import current_app, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from portal.api import bp
from portal.api.errors import error_response
from portal.api.schemas import completion_request, enrollment_request
from portal.enrollment import errors
from portal.enrollment.completion import authenticate, complete, touch
from portal.enrollment.redeem import redeem
from portal.extensions import client_address
from portal.extensions import limiter

MAX_BODY = 16 * 1024


@bp.before_request
def limit_body():
    # Werkzeug refuses to read more than this, whatever Content-Length claims.
    request.max_content_length = MAX_BODY


@bp.errorhandler(errors.EnrollmentError)
def enrollment_error(error: errors.EnrollmentError):
    return error_response(error.status, error.code, error.message)


def _json_body():
    if request.mimetype != "application/json":
        raise errors.UnsupportedMediaType()
    try:
        data = request.get_data()  # 413 when Content-Length is over MAX_BODY
    except HTTPException:
        raise
    except Exception:  # the server cannot read it (gunicorn: a broken chunked body)
        raise errors.InvalidRequest("The request body cannot be read.") from None
    # A streamed (chunked) body is only cut at MAX_BODY by Werkzeug: one more byte means too large.
    if request.content_length is None and len(data) >= MAX_BODY \
            and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    try:
        return current_app.json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the stack allows
        raise errors.InvalidRequest("The request body is not valid JSON.") from None


def _credential_failure(response) -> bool:
    # Only wrong credentials count: 500 tablets behind one NAT address must all enroll.
    return response.status_code == 401


@bp.post("/enrollments")
@limiter.limit(lambda: current_app.config["API_FAILED_ATTEMPTS_LIMIT"],
               deduct_when=_credential_failure)
def create_enrollment():
    qr_id, otp, ticket, device = enrollment_request(_json_body())
    result = redeem(qr_id, otp=otp, ticket=ticket, device=device,
                    client_address=client_address())
    body = {"device_id": result.device_id, "device_token": result.token, "state": result.state,
            "user": result.user, "lang": result.lang}
    return jsonify(body), 201 if result.created else 200


@bp.post("/devices/<device_id>/provisioning-complete")
def provisioning_complete(device_id):
    device = authenticate(device_id, _bearer_token())
    result, reason = completion_request(_json_body())
    device = complete(device, result, reason, client_address=client_address())
    return jsonify(device_id=device.public_id, state=device.state)


@bp.get("/devices/<device_id>")
def device(device_id):
    device = touch(authenticate(device_id, _bearer_token()))
    return jsonify(device_id=device.public_id, state=device.state, user=_user_json(device.user),
                   enrolled_at=device.enrolled_at.isoformat().replace("+00:00", "Z")
                   if device.enrolled_at else None)


def _bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _user_json(user) -> dict:
    return {"username": user.username, "display_name": user.display_name or user.username,
            "email": user.email}
