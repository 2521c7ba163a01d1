"""What the Admin API reads: a JSON body (400 when it is none, 415 when not JSON) and its
fields, refused field by field (422, by the API's names). The rules of a QR code are the
wizard's own (portal.provisioning.qr_codes.validate_request, run by create_qr_code): this
module only checks that each value is of its JSON type and turns the body into the wizard's
QrCodeRequest, and the domain's field names back into the API's."""
from flask import current_app, request
from werkzeug.exceptions import BadRequest, HTTPException, UnsupportedMediaType

from portal.adminapi.errors import ValidationFailed
from portal.errors import WHOLE
from portal.provisioning.qr_codes import UNLIMITED, QrCodeRequest
from portal.settings import network_profiles
from portal.vocabulary import EnrollmentOption, Management, NetworkType, SecurityType
from portal.web.pagination import decode_cursor

MAX_TEXT = 256
MAX_LIMIT, DEFAULT_LIMIT = 100, 25
MAX_QUERY = 64
QR_FIELDS = ("option", "user", "usage_count", "localization", "send_to_user",
             "alternative_address", "otp_validity", "name", "network_profile", "network",
             "management")
MANAGEMENTS = tuple(Management)  # companion (the default), adp (Android Device Policy)
NETWORK_FIELDS = ("type", "ssid", "security", "password", "hidden")
SECURITIES = (SecurityType.WPA, SecurityType.WEP, SecurityType.NONE)
# The wizard's (QrCodeRequest's) field names → the API's.
_API_FIELD = {"lang": "localization", "username": "user", "ldap_user": "user",
              "alternative_email": "alternative_address", "network": "network.type",
              "wifi_ssid": "network.ssid", "wifi_security": "network.security",
              "wifi_password": "network.password", "wifi_hidden": "network.hidden",
              WHOLE: "request"}


def json_body() -> object:
    if request.mimetype != "application/json":
        raise UnsupportedMediaType()
    try:
        data = request.get_data()  # 413 past MAX_BODY
    except HTTPException:
        raise
    except Exception:  # noqa: BLE001 - the server cannot read it (a broken chunked body)
        raise BadRequest() from None
    try:
        return current_app.json.loads(data)
    except (ValueError, RecursionError):
        raise BadRequest() from None


def _storable(text: str) -> bool:
    """No NUL (PostgreSQL's text cannot hold one) and no lone surrogate (not UTF-8)."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


class _Fields:
    """Reads the values of one JSON object, collecting a message per wrong field."""

    def __init__(self, values: dict, prefix: str = ""):
        self.values, self.prefix, self.errors = values, prefix, {}

    def _error(self, name: str, message: str) -> None:
        self.errors.setdefault(self.prefix + name, message)

    def text(self, name: str, *, choices=None):
        value = self.values.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            self._error(name, "Must be a string.")
        elif len(value) > MAX_TEXT:
            self._error(name, f"Must be at most {MAX_TEXT} characters.")
        elif not _storable(value):
            self._error(name, "Must not contain NUL or unpaired surrogate characters.")
        elif choices is not None and value not in choices:
            self._error(name, "Must be one of: " + ", ".join(choices) + ".")
        else:
            return value
        return None

    def boolean(self, name: str) -> bool:
        value = self.values.get(name, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            self._error(name, "Must be true or false.")
            return False
        return value

    def integer(self, name: str, *, words=()):
        value = self.values.get(name)
        if value is None or (isinstance(value, str) and value in words):
            return value
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            extra = " or " + " or ".join(f'"{word}"' for word in words) if words else ""
            self._error(name, f"Must be a whole number{extra}.")
            return None
        if abs(value) > 2**31:
            self._error(name, "Is out of range.")
            return None
        return value

    def unknown(self, known) -> None:
        for name in self.values:
            if name not in known:
                self._error(str(name)[:64], "Is not a field of this request.")


def qr_code_request(body) -> QrCodeRequest:
    """The wizard's request from POST /qr-codes' body; raises ValidationFailed with every
    wrong field at once (their JSON types, and which network was given)."""
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object.", "request")
    fields = _Fields(body)
    fields.unknown(QR_FIELDS)
    option = fields.text("option", choices=tuple(EnrollmentOption))
    if "option" not in body or body["option"] is None:
        fields._error("option", "Choose auto (Automatic Provisioning) or ssp (Self Service "
                                "Portal).")
    values = dict(option=option or "", username=fields.text("user"),
                  usage_count=fields.integer("usage_count"),
                  lang=fields.text("localization") or "en",
                  send_to_user=fields.boolean("send_to_user"),
                  alternative_email=fields.text("alternative_address") or None,
                  otp_validity=fields.integer("otp_validity", words=(UNLIMITED,)),
                  name=fields.text("name") or None, network="")
    management = fields.text("management", choices=MANAGEMENTS)
    if management is not None:  # given: it wins over a network profile's
        values.update(management=management, management_given=True)
    profile_name, network = fields.text("network_profile"), body.get("network")
    if (profile_name is None) == (network is None) and "network_profile" not in fields.errors:
        fields._error("network", "Give either network_profile (a saved profile's name) or "
                                 "network (the settings), not both.")
    elif profile_name is not None:
        profile = network_profiles.find(profile_name)
        if profile is None:
            fields._error("network_profile", f"No network profile is named '{profile_name}'.")
        else:
            values.update(network_profile_id=profile.id, network=profile.network)
    elif not isinstance(network, dict):
        fields._error("network", "Must be an object: type, ssid, security, password, hidden.")
    else:
        values.update(_network(network, fields))
    if fields.errors:
        raise ValidationFailed(fields.errors)
    return QrCodeRequest(**values)


def _network(network: dict, fields: _Fields) -> dict:
    inner = _Fields(network, "network.")
    inner.unknown(NETWORK_FIELDS)
    kind = inner.text("type", choices=tuple(NetworkType))
    if kind is None and "network.type" not in inner.errors:
        inner._error("type", "Choose wifi or mobile.")
    values = {"network": kind or ""}
    if kind == NetworkType.WIFI:
        values.update(wifi_ssid=inner.text("ssid"),
                      wifi_security=inner.text("security", choices=SECURITIES) or
                      (None if "security" in network else SecurityType.WPA),
                      wifi_password=inner.text("password"), wifi_hidden=inner.boolean("hidden"))
    fields.errors.update(inner.errors)
    return values


def api_errors(errors: dict[str, str]) -> dict[str, str]:
    """The domain's messages by the API's field names."""
    return {_API_FIELD.get(name, name): message for name, message in errors.items()}


def list_arguments(args, *, filters: dict) -> tuple[dict, int, dict]:
    """(limit, filter values) of a list's query string; 422 for a limit or a filter value
    the list does not have (also an empty one). filters: {name: allowed values, or None for
    text}."""
    errors, values = {}, {}
    limit_text = args.get("limit", str(DEFAULT_LIMIT))
    limit = int(limit_text) if limit_text.isascii() and limit_text.isdigit() \
        and len(limit_text) < 4 else 0
    if not 1 <= limit <= MAX_LIMIT:
        errors["limit"] = f"Must be a whole number from 1 to {MAX_LIMIT}."
    for name, allowed in filters.items():
        value = args.get(name, "")
        if allowed is None:
            if len(value) > MAX_QUERY:
                errors[name] = f"Must be at most {MAX_QUERY} characters."
            elif not _storable(value) or any(ord(char) < 32 for char in value):
                errors[name] = "Must not contain control characters."
            else:
                values[name] = value.strip()
        elif name in args and value not in allowed:
            errors[name] = "Must be one of: " + ", ".join(allowed) + "."
        else:
            values[name] = value or None
    if errors:
        raise ValidationFailed(errors)
    return limit, values


def pager_arguments(args, columns) -> dict:
    """{"after": cursor} when ?after= is a cursor of this list; 422 when it is not one."""
    after = args.get("after")
    if after is None:
        return {}
    if decode_cursor(after, columns) is None:
        raise ValidationFailed({"after": "Is not a cursor of this list: use next_cursor as "
                                         "it was given."})
    return {"after": after}


# POST /batches: a bulk batch from JSON rows, the CSV's columns by the API's names.
BATCH_FIELDS = ("network_profile", "otp_validity", "name", "rows", "management")
ROW_FIELDS = ("user", "usage_count", "localization", "send_to_user", "alternative_address",
              "management")
_ROW_COLUMN = {"user": "username"}          # the API's row field → the CSV's column
_API_COLUMN = {"username": "user", "ldap_user": "user", "ldap_bind": "request", "": "rows"}


def batch_request(body, *, max_rows: int) -> dict:
    """The batch's settings and rows from POST /batches' body (rows as the bulk domain reads
    a CSV's: {"row": n, column: value}); raises ValidationFailed with every wrong field."""
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object.", "request")
    fields = _Fields(body)
    fields.unknown(BATCH_FIELDS)
    values = {"otp_validity": fields.integer("otp_validity", words=(UNLIMITED,)),
              "name": fields.text("name") or None, "rows": [],
              "management": fields.text("management", choices=MANAGEMENTS)}
    profile_name = fields.text("network_profile")
    if profile_name is None and "network_profile" not in fields.errors:
        fields._error("network_profile", "Give the name of a saved network profile.")
    elif profile_name is not None:
        profile = network_profiles.find(profile_name)
        if profile is None:
            fields._error("network_profile", f"No network profile is named '{profile_name}'.")
        else:
            values["network_profile_id"] = profile.id
    rows = body.get("rows")
    if not isinstance(rows, list) or not rows:
        fields._error("rows", "Must be a list of 1 or more rows (objects).")
    elif len(rows) > max_rows:
        fields._error("rows", f"Has {len(rows):,} rows; a batch has at most {max_rows:,}.")
    else:
        for index, row in enumerate(rows):
            values["rows"].append(_batch_row(row, index, fields))
    if fields.errors:
        raise ValidationFailed(fields.errors)
    return values


def _batch_row(row, index: int, fields: _Fields) -> dict:
    if not isinstance(row, dict):
        fields._error(f"rows[{index}]", "Must be an object: user, usage_count, localization, "
                                        "send_to_user, alternative_address, management.")
        return {}
    inner = _Fields(row, f"rows[{index}].")
    inner.unknown(ROW_FIELDS)
    values = {"row": index + 1, "username": inner.text("user"),
              "usage_count": inner.integer("usage_count"),
              "localization": inner.text("localization"),
              "send_to_user": inner.boolean("send_to_user"),
              "alternative_address": inner.text("alternative_address"),
              "management": inner.text("management", choices=MANAGEMENTS)}
    fields.errors.update(inner.errors)
    return values


def batch_errors(problems) -> dict[str, str]:
    """The bulk domain's problems (row 1 = rows[0]; row 0 = the batch) by the API's names."""
    errors = {}
    for problem in problems:
        column = _API_COLUMN.get(problem.column, problem.column)
        name = f"rows[{problem.row - 1}].{column}" if problem.row else column
        errors.setdefault(name, problem.message)
    return errors
