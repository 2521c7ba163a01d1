"""Enrollment failures, each carrying the contract's status and code (companion-api.md §2)."""


class EnrollmentError(Exception):
    status = 400
    code = "invalid_request"
    message = "The request is not valid."

    def __init__(self, message: str | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message


class InvalidRequest(EnrollmentError):
    pass


class UnsupportedMediaType(EnrollmentError):
    status, code = 415, "unsupported_media_type"
    message = "The request body must be application/json."


class InvalidCredentials(EnrollmentError):
    status, code = 401, "invalid_credentials"
    message = "The QR code, one-time password or ticket is not valid."


class QrRevoked(EnrollmentError):
    status, code = 403, "qr_revoked"
    message = "This QR code was revoked by the administrator."


class UsageExhausted(EnrollmentError):
    status, code = 409, "usage_exhausted"
    message = "Every enrollment of this QR code has been used."


class NoLicense(EnrollmentError):
    status, code = 409, "no_license"
    message = "No license remains for another device."


class Expired(EnrollmentError):
    status, code = 410, "expired"
    message = "The one-time password or ticket has expired."


class UnsupportedAndroidVersion(EnrollmentError):
    status, code = 422, "unsupported_android_version"
    message = "Android 7.0 (API level 24) or newer is required."


class ZeroTouchConflict(EnrollmentError):
    status, code = 422, "zero_touch_conflict"
    message = ("This device is registered for Zero-Touch or Knox Mobile Enrollment and must "
               "enroll through it, not with a QR code.")


class InvalidToken(EnrollmentError):
    status, code = 401, "invalid_token"
    message = "The device token is missing or not valid."


class InvalidState(EnrollmentError):
    status, code = 409, "invalid_state"
    message = "The device cannot change to that state."
