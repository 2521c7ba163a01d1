"""The Android Management API calls the portal makes, each through Connection.call."""
import json
from dataclasses import dataclass
from typing import Iterator

from portal.amapi import lease
from portal.amapi.client import AmapiError, Connection, connect, duration, fetch_access_token
from portal.amapi.models import AmapiSettings

# additionalData / tokenTag: which QR code (and, for a Self Service sign-in, which user) a
# token belongs to, so a device that enrolled with it is matched to the QR code.
_DATA_QR, _DATA_USER, _DATA_USER_ID = "qr", "user", "uid"
DEVICE_PAGE_SIZE = 100


def token_data(qr_public_id: str, username: str | None = None,
               user_id: int | None = None) -> str:
    """The enrollment token's additionalData naming our QR code (and the signed-in user: the
    name for people reading Google's console, the id because names are unique per source)."""
    data = {_DATA_QR: qr_public_id}
    if username is not None:
        data[_DATA_USER] = username
    if user_id is not None:
        data[_DATA_USER_ID] = user_id
    return json.dumps(data, separators=(",", ":"))


def token_user_id(text: str | None) -> int | None:
    """The signed-in user's id from a device's enrollmentTokenData, when it names one."""
    try:
        data = json.loads(text or "")
    except ValueError:
        return None
    user_id = data.get(_DATA_USER_ID) if isinstance(data, dict) else None
    return user_id if isinstance(user_id, int) and not isinstance(user_id, bool) else None


def read_token_data(text: str | None) -> tuple[str | None, str | None]:
    """(QR code public id, username) from a device's enrollmentTokenData; (None, None) when it
    is not ours."""
    try:
        data = json.loads(text or "")
    except ValueError:
        return None, None
    if not isinstance(data, dict) or not isinstance(data.get(_DATA_QR), str):
        return None, None
    user = data.get(_DATA_USER)
    return data[_DATA_QR], user if isinstance(user, str) else None


def create_enrollment_token(connection: Connection, *, policy_id: str, seconds: int | None,
                            one_time_only: bool, additional_data: str,
                            account_identifier: str | None) -> dict:
    """enterprises.enrollmentTokens.create: a fully managed (personal usage disallowed) token
    with the policy; its answer holds name, value, expirationTimestamp and qrCode (a JSON
    string). Not repeated on a 500 or a timeout (Google may have made it)."""
    body = {"policyName": connection.settings.policy_name(policy_id),
            "duration": duration(seconds), "oneTimeOnly": bool(one_time_only),
            "allowPersonalUsage": "PERSONAL_USAGE_DISALLOWED",
            "additionalData": additional_data}
    if account_identifier:
        body["user"] = {"accountIdentifier": account_identifier}
    request = connection.service.enterprises().enrollmentTokens().create(
        parent=connection.enterprise, body=body)
    answer = connection.call("enrollment_token", request, idempotent=False)
    if not answer.get("name") or not answer.get("value") or not answer.get("qrCode"):
        raise AmapiError("enrollment_token", "Google's answer held no enrollment token.")
    return answer


def delete_enrollment_token(connection: Connection, name: str) -> None:
    """enterprises.enrollmentTokens.delete; a token Google no longer knows counts as deleted."""
    request = connection.service.enterprises().enrollmentTokens().delete(name=name)
    _delete(connection, "enrollment_token", request)


def delete_device(connection: Connection, name: str, *, wipe: bool = True) -> None:
    """enterprises.devices.delete: Google removes the device from the enterprise and (wipe)
    factory-resets it. A device Google no longer knows counts as deleted."""
    kwargs = {"name": name}
    if wipe:
        kwargs.update(wipeDataFlags=["WIPE_DATA_FLAG_UNSPECIFIED"],
                      wipeReasonMessage="Retired by your organization.")
    _delete(connection, "device", connection.service.enterprises().devices().delete(**kwargs))


def list_devices(connection: Connection) -> Iterator[dict]:
    """Every device of the enterprise (enterprises.devices.list, page by page)."""
    token = None
    while True:
        request = connection.service.enterprises().devices().list(
            parent=connection.enterprise, pageSize=DEVICE_PAGE_SIZE, pageToken=token)
        answer = connection.call("devices", request)
        yield from answer.get("devices", [])
        token = answer.get("nextPageToken")
        if not token:
            return


def provisioning_info(connection: Connection, identifier: str) -> dict:
    """provisioningInfo.get: the device that opened our sign-in page (model, brand, serial...),
    and the enterprise it is enrolling into."""
    name = identifier if identifier.startswith("provisioningInfo/") \
        else f"provisioningInfo/{identifier}"
    return connection.call("provisioning_info",
                           connection.service.provisioningInfo().get(name=name))


def add_signin_detail(connection: Connection, *, tag: str, signin_url: str) -> dict:
    """Add sign-in details pointing at our Self Service page, tagged with the QR code's public
    id, to the enterprise (enterprises.patch, updateMask signinDetails); the SigninDetail Google
    answers with holds the qrCode (a JSON string) of its sign-in enrollment token. Google
    changes the list only whole: the change holds the sign-in details' lease (amapi.lease)."""
    with lease.signin_details() as held:
        details = [detail for detail in _signin_details(connection)
                   if detail.get("tokenTag") != tag]
        details.append({"signinUrl": signin_url, "tokenTag": tag,
                        "allowPersonalUsage": "PERSONAL_USAGE_DISALLOWED",
                        "defaultStatus": "SIGNIN_DETAIL_IS_NOT_DEFAULT"})
        held.renew()
        answer = _patch_signin_details(connection, details)
    for detail in answer.get("signinDetails", []):
        if detail.get("tokenTag") == tag and detail.get("qrCode"):
            return detail
    raise AmapiError("signin", "Google's answer held no sign-in enrollment token.")


def remove_signin_detail(connection: Connection, tag: str) -> None:
    """Remove the sign-in details of one Self Service QR code (its token stops enrolling),
    holding the sign-in details' lease as add_signin_detail does."""
    with lease.signin_details() as held:
        details = _signin_details(connection)
        kept = [detail for detail in details if detail.get("tokenTag") != tag]
        if len(kept) != len(details):
            held.renew()
            _patch_signin_details(connection, kept)


@dataclass(frozen=True)
class Step:
    name: str       # key, token, enterprise, policy
    label: str
    ok: bool
    message: str


def test_connection(settings: AmapiSettings, *, key_text: str | None = None) -> list[Step]:
    """Test connection: the key, an access token, the enterprise, then each policy; the steps
    up to the first that fails (it names what went wrong), nothing after it."""
    steps = []
    try:
        connection = connect(settings, key_text=key_text)
    except AmapiError as error:
        return [Step("key", "Service-account key", False, error.message)]
    steps.append(Step("key", "Service-account key", True,
                      f"Read: the account {connection.settings.key_email or 'of the key'}."))
    try:
        fetch_access_token(connection)
    except AmapiError as error:
        return steps + [Step("token", "Access token", False, error.message)]
    steps.append(Step("token", "Access token", True, "Google issued an access token."))
    try:
        enterprise = connection.call("enterprise", connection.service.enterprises().get(
            name=connection.enterprise))
    except AmapiError as error:
        return steps + [Step("enterprise", "Enterprise", False, error.message)]
    shown = enterprise.get("enterpriseDisplayName") or connection.enterprise
    steps.append(Step("enterprise", "Enterprise", True, f"Found: {shown}."))
    for label, policy_id in (("Policy for Self Service Portal", settings.policy_ssp),
                             ("Policy for Automatic Provisioning", settings.policy_auto)):
        if not policy_id:
            continue
        try:
            connection.call("policy", connection.service.enterprises().policies().get(
                name=settings.policy_name(policy_id)))
        except AmapiError as error:
            message = error.message
            if error.status == 404:
                message = (f"Google does not know the policy {policy_id} in "
                           f"{connection.enterprise}.")
            return steps + [Step("policy", label, False, message)]
        steps.append(Step("policy", label, True, f"Found: {policy_id}."))
    return steps


def _signin_details(connection: Connection) -> list[dict]:
    enterprise = connection.call("signin", connection.service.enterprises().get(
        name=connection.enterprise))
    # Only what the API lets us send back: the read-only token and QR are Google's.
    keep = ("signinUrl", "tokenTag", "allowPersonalUsage", "defaultStatus")
    return [{key: detail[key] for key in keep if key in detail}
            | ({"signinEnrollmentToken": detail["signinEnrollmentToken"]}
               if "signinEnrollmentToken" in detail else {})
            for detail in enterprise.get("signinDetails", [])]


def _patch_signin_details(connection: Connection, details: list[dict]) -> dict:
    request = connection.service.enterprises().patch(
        name=connection.enterprise, updateMask="signinDetails",
        body={"signinDetails": details})
    return connection.call("signin", request, idempotent=True)


def _delete(connection: Connection, step: str, request) -> None:
    try:
        connection.call(step, request)
    except AmapiError as error:
        if error.status != 404:
            raise
