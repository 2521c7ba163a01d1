"""Android Device Policy QR codes (issue 17): what Google makes for a QR code before the portal
saves it: an enrollment token (Automatic Provisioning) or sign-in details pointing at our Self
Service page (Self Service Portal). Google is asked first and outside the database transaction,
so a token Google refuses means no QR code and no reservation; a QR code the portal then does
not save (too few licenses) gives its token back (deleted at Google, retried by the worker)."""
import json
from dataclasses import dataclass

from portal.amapi import calls, tasks
from portal.amapi.client import AmapiError, connect, current, is_configured
from portal.android.payload import ENROLLMENT_TOKEN_EXTRA, google_parts
from portal.database import db
from portal.enrollment.pending import owe_google_release
from portal.vocabulary import AmapiTaskKind, EnrollmentOption

NOT_CONFIGURED = ("Android Device Policy needs the Android Management API: an Administrator "
                  "sets it up under Admin → Android Management API.")
NO_POLICY = {EnrollmentOption.AUTO: "Choose the policy for Automatic Provisioning under Admin → "
                                    "Android Management API first.",
             EnrollmentOption.SSP: "Choose the policy for Self Service Portal under Admin → "
                                   "Android Management API first."}
# What Google's qrCode looks like, with values of the real lengths: the wizard sizes and checks
# an Android Device Policy QR code with it before Google is asked for the real one.
PLACEHOLDER_QR_CODE = json.dumps({
    "android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME":
        "com.google.android.apps.work.clouddpc/.receivers.CloudDeviceAdminReceiver",
    "android.app.extra.PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM":
        "I5YvS0O5hXY46mb01BlRjq4oJJGs2kuUcHvVkAPEXlg",
    "android.app.extra.PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION":
        "https://play.google.com/managed/downloadManagingApp?identifier=setup",
    "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE": {
        ENROLLMENT_TOKEN_EXTRA: "X" * 20}})


@dataclass(frozen=True)
class GoogleEnrollment:
    """What Google made for one QR code."""
    qr_code: str                    # Google's qrCode: a JSON string of provisioning extras
    token_name: str | None = None   # Automatic: enterprises/{e}/enrollmentTokens/{id}
    token_value: str | None = None  # Automatic: the token (the QR code's "OTP": View OTP)
    signin_tag: str | None = None   # Self Service: the sign-in details' tokenTag (public id)

    def parts(self):
        """(companion, admin extras, other keys) for the payload (android.payload)."""
        return google_parts(self.qr_code)


PLACEHOLDER = GoogleEnrollment(qr_code=PLACEHOLDER_QR_CODE, token_value="X" * 20)


def configuration_error(option: str) -> str | None:
    """Why an Android Device Policy QR code of this option cannot be made now, or None."""
    settings = current()
    if not is_configured(settings):
        return NOT_CONFIGURED
    policy = settings.policy_auto if option == EnrollmentOption.AUTO else settings.policy_ssp
    return None if policy else NO_POLICY.get(option, NOT_CONFIGURED)


def signin_url(server_url: str, public_id: str) -> str:
    """Our Self Service sign-in page for this QR code, as the sign-in details name it (Android
    Device Policy adds &provisioningInfo=… when it opens it)."""
    return f"{server_url.rstrip('/')}/ssp/?qr_id={public_id}"


def account_identifier(user) -> str | None:
    """user.accountIdentifier: stable and without personal data (Google asks for no PII)."""
    return f"portal-user-{user.id}" if user is not None and user.id is not None else None


def connection():
    """A Connection with the saved settings (read now: call it before ending the transaction).
    Raises AmapiError."""
    return connect(current())


def obtain(option: str, public_id: str, *, user=None, usage_count: int | None = None,
           validity_hours: int | None = None, server_url: str,
           connection=None) -> GoogleEnrollment:
    """Ask Google for this QR code's enrollment token or sign-in details. connection: one to
    reuse (a bulk batch asks for many), else a new one with the saved settings.

    Raises AmapiError (its .errors name the step; the wizard shows it beside Save)."""
    connection = connection or connect(current())
    settings = connection.settings
    if option == EnrollmentOption.AUTO:
        answer = calls.create_enrollment_token(
            connection, policy_id=settings.policy_auto,
            seconds=None if validity_hours is None else validity_hours * 3600,
            one_time_only=usage_count == 1, additional_data=calls.token_data(public_id),
            account_identifier=account_identifier(user))
        return GoogleEnrollment(qr_code=answer["qrCode"], token_name=answer["name"],
                                token_value=answer["value"])
    detail = calls.add_signin_detail(connection, tag=public_id,
                                     signin_url=signin_url(server_url, public_id))
    return GoogleEnrollment(qr_code=detail["qrCode"], signin_tag=public_id)


def one_time_token(qr_code, user, *, validity_seconds: int = 3600, connection=None) -> dict:
    """Self Service with Android Device Policy: after the user signed in on our page, a
    one-time enrollment token for that user (additionalData names the QR code and the user).
    Raises AmapiError."""
    connection = connection or connect(current())
    return calls.create_enrollment_token(
        connection, policy_id=connection.settings.policy_ssp, seconds=validity_seconds,
        one_time_only=True, additional_data=calls.token_data(qr_code.public_id, user.username, user.id),
        account_identifier=account_identifier(user))


def owe_release(qr_code) -> None:
    """In the caller's transaction: what Google made for this QR code is no longer needed
    (all used, expired, revoked): delete the token or remove the sign-in details, retried.
    (enrollment.pending.owe_google_release: revocation and expiry, below this layer, use it.)"""
    owe_google_release(qr_code)


def give_back(*enrollments: GoogleEnrollment) -> None:
    """QR codes were not saved after Google made their tokens: delete the tokens (or sign-in
    details) now, or let the worker retry; committed on its own."""
    for enrollment in enrollments:
        if enrollment.token_name:
            tasks.owe(AmapiTaskKind.DELETE_TOKEN, enrollment.token_name)
        elif enrollment.signin_tag:
            tasks.owe(AmapiTaskKind.REMOVE_SIGNIN, enrollment.signin_tag)
    db.session.commit()
    try:
        tasks.run_due()
    except AmapiError:  # pragma: no cover — run_due records failures itself
        pass
