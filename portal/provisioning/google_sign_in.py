"""Self Service with Android Device Policy: Google's sign-in URL flow, after the user signed in.

Android Device Policy opens our sign-in page (SigninDetail.signinUrl) and adds
&provisioningInfo=provisioningInfo/<id>; once the user has signed in and pressed Start, the
portal reads that device (provisioningInfo.get), checks it enrolls into our enterprise and that
a license is free, and asks Google for a one-time enrollment token for the user. The device
then goes on to Google's enrollment URL with ?et=<token value> (the caller redirects).

The token's value is never stored or logged: the device that enrolls with it is matched to the
QR code and the user through its additionalData (amapi.calls.token_data)."""
import re

from portal.amapi import calls
from portal.amapi.client import AmapiError, connect, current
from portal.audit.log import record
from portal.database import db, end_transaction
from portal.errors import DomainError
from portal.licensing.seats import figures
from portal.provisioning.device_policy import one_time_token

ACTION = "ssp.device_policy_token"
# Google's resource name is provisioningInfo/{id} (the discovery document's ^provisioningInfo/
# [^/]+$); ids are URL-safe. Anything else in the URL was edited and never reaches Google.
_INFO = re.compile(r"(?:provisioningInfo/)?([A-Za-z0-9_-]{1,200})")


class SignInFlowRefused(DomainError):
    """The device cannot go on to Google; .code says why (the page words it for the user),
    .transient when trying again later may work."""

    def __init__(self, code: str, message: str, *, transient: bool = False):
        super().__init__(message)
        self.code, self.transient = code, transient


def provisioning_info_name(text: str | None) -> str | None:
    """provisioningInfo/<id> for what Android Device Policy added to our URL, or None when the
    text cannot be one (missing, edited)."""
    if not isinstance(text, str):
        return None
    match = _INFO.fullmatch(text)
    return f"provisioningInfo/{match.group(1)}" if match else None


def enrollment_token(qr_code, user, info_name: str, *, client_address: str | None) -> str:
    """The one-time enrollment token's value for this device, user and QR code; the audit
    event (without the value) is committed. Raises SignInFlowRefused (its refusal audited and
    committed too)."""
    settings = current()
    info: dict = {}
    try:
        connection = connect(settings)
        licenses_left = figures().remaining
        qr_code.public_id, user.username, user.id  # noqa: B018  (loaded for the token)
        end_transaction()  # read all it needs: SQLite's lock is not held while Google answers
        info = calls.provisioning_info(connection, info_name)
        if info.get("enterprise") != settings.enterprise_name:
            raise SignInFlowRefused("wrong_enterprise", "The device enrolls into another "
                                    f"enterprise ({str(info.get('enterprise'))[:100]}).")
        if licenses_left < 1:
            raise SignInFlowRefused("no_license", "No license remains for another device.")
        token = one_time_token(qr_code, user, connection=connection)
    except AmapiError as error:
        refusal = SignInFlowRefused(
            "unknown_device" if error.step == "provisioning_info" and error.status == 404
            else "google", error.message, transient=error.transient)
        _audit(qr_code, user, info, info_name, client_address, refusal, step=error.step)
        raise refusal from None
    except SignInFlowRefused as refusal:
        _audit(qr_code, user, info, info_name, client_address, refusal)
        raise
    _audit(qr_code, user, info, info_name, client_address, None,
           enrollment_token=token.get("name"))
    return token["value"]


def _audit(qr_code, user, info: dict, info_name: str, client_address: str | None,
           refusal: SignInFlowRefused | None, **details) -> None:
    details = {key: value for key, value in details.items() if value}
    if refusal is not None:
        details["message"] = refusal.message[:500]
    if info.get("model"):
        details["model"] = str(info["model"])[:100]
    record(ACTION, actor_type="user", actor=user.username, target=qr_code.public_id,
           outcome="success" if refusal is None else "refused",
           code=None if refusal is None else refusal.code, client_address=client_address,
           serial_number=str(info["serialNumber"])[:64] if info.get("serialNumber") else None,
           provisioning_info=info_name, **details)
    db.session.commit()
