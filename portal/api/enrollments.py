"""POST /enrollments, POST /devices/{id}/provisioning-complete, GET /devices/{id}."""
from flask import current_app, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, TooManyRequests

from portal import otp as otps
from portal.api import bp
from portal.web.json_errors import error_response
from portal.api.schemas import completion_request, enrollment_request
from portal.enrollment import errors
from portal.enrollment.completion import authenticate, complete, touch
from portal.enrollment.redeem import redeem
from portal.extensions import client_address
from portal.throttle import fail, wait

MAX_BODY = 16 * 1024
# Wrong OTPs and tickets, counted per client address (the limit's setting, the key's name).
_FAILED_ATTEMPTS = ("API_FAILED_ATTEMPTS_LIMIT", "api-failed-attempts")


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


@bp.post("/enrollments")
def create_enrollment():
    qr_id, otp, ticket, device = enrollment_request(_json_body())
    address = client_address()
    retry_after = wait(*_FAILED_ATTEMPTS, address)
    throttled = retry_after is not None
    if throttled and otp is not None and len(otp) < otps.QR_OTP_LENGTH:
        # Shorter than 96 bits: the OTP of a QR code made before they were, guessable. Past
        # the limit it is refused unchecked, as all were then (a new OTP: Reset OTP).
        raise TooManyRequests(retry_after=retry_after)
    try:
        result = redeem(qr_id, otp=otp, ticket=ticket, device=device, client_address=address,
                        throttled=throttled)
    except errors.InvalidCredentials:
        # Throttling slows guessing, never enrollment: every request is checked, a right OTP
        # or ticket (96 and 256 random bits: not guessable at any rate) always goes through,
        # and only a wrong one past the limit is told to wait. So one broken or hostile device
        # behind a school's NAT cannot stop the tablets beside it.
        retry_after = fail(*_FAILED_ATTEMPTS, address)
        if retry_after is not None:
            raise TooManyRequests(retry_after=retry_after) from None
        raise
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
