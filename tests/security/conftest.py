"""What the security tests share: the URL map walked with plausible values, an end user's
session, and a snapshot of every table to prove that a refused request changed nothing."""
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from werkzeug.routing.converters import NumberConverter

from tests.conftest import csrf_token, csrf_token_from
from tests.selfservice.conftest import get, post_sign_in

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
END_USER_PASSWORD = "end-user-password-1"


def is_admin_rule(rule) -> bool:
    """An admin route by its endpoint or by its address: a view registered on another
    blueprint (or on the app) under /admin is still part of the console."""
    return rule.endpoint.startswith("admin.") or rule.rule == "/admin" \
        or rule.rule.startswith("/admin/")


def methods_of(rule) -> list[str]:
    # HEAD runs the GET view; OPTIONS is answered by Flask itself without calling the view.
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def url_for_rule(app, rule, known: dict) -> str:
    """The rule's URL with a real object's key where one is known, else a plausible value."""
    values = {}
    for name in rule.arguments:
        converter = rule._converters[name]
        items = getattr(converter, "items", None)  # any(png, svg)
        if items:
            values[name] = sorted(items)[0]
        elif name in known:
            values[name] = known[name]
        else:
            values[name] = 1 if isinstance(converter, NumberConverter) else "1"
    return app.url_map.bind("localhost").build(rule.endpoint, values)


def location_path(response) -> str | None:
    target = response.headers.get("Location") or response.headers.get("HX-Redirect")
    return urlsplit(target).path if target else None


def snapshot(db) -> dict[str, list]:
    """Every row of every table, in a stable order."""
    rows = {}
    for table in db.metadata.sorted_tables:
        rows[table.name] = sorted(map(repr, db.session.execute(sa.select(table)).all()))
    return rows


def changed_tables(before: dict, after: dict) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]


@pytest.fixture
def known(db, make_admin, make_qr_code):
    return known_objects(make_admin, make_qr_code)


def known_objects(make_admin, make_qr_code) -> dict:
    """Real objects for the URL map's arguments, so a missing guard would really act on one:
    an Automatic Provisioning QR with its pending enrollment and outbox mail, a custom
    localization, a Zero-Touch entry, an API token, a bulk batch and a preview, a webhook
    endpoint with a delivery. (Also the accessibility walk's, on a live server.)"""
    from portal.database import db
    from portal.enrollment.models import PendingEnrollment, ZeroTouchEntry
    from portal.enrollment.zero_touch import import_identifiers
    from portal.mail.models import OutboxMessage
    from portal.settings.localizations import add_localization
    from portal.settings.network_profiles import ProfileValues, save as save_profile

    make_admin(mail_recipient=True)
    qr = make_qr_code("auto")
    add_localization("fr-CA", "Français (Canada)", actor="setup")
    import_identifiers(["R58N000SECURITY"], actor_type="operator", actor="setup")
    entry = db.session.scalar(sa.select(ZeroTouchEntry.id))
    message = db.session.scalar(sa.select(OutboxMessage.id))
    pending = db.session.scalar(sa.select(PendingEnrollment.id)
                                .where(PendingEnrollment.qr_code_id == qr.id))
    device = _enrolled_device(qr)
    batch, staged = _batch_and_preview(make_admin)
    from portal.accounts.api_tokens import create_token
    token = create_token("Security walk", "read", created_by="setup", days=30).token
    endpoint, delivery = _webhook(device)
    profile = save_profile(ProfileValues("Security Wi-Fi", "wifi", "Security", "WPA",
                                         "security-secret"), actor="setup")
    return {"batch_id": batch, "staged_id": staged, "endpoint_id": endpoint,
            "delivery_id": delivery, "public_id": qr.public_id, "tag": "fr-CA", "entry_id": entry,
            "message_id": message or 1, "kind": "png", "pending_id": pending,
            "user_id": qr.user_id, "admin_id": make_admin(username="another-admin").id,
            "device_id": device, "token_id": token.id, "profile_id": profile.id}


def _batch_and_preview(make_admin) -> tuple[str, str]:
    """A created bulk batch of one QR code, and a preview waiting for Confirm."""
    from portal.accounts.users import add_local_user
    from portal.provisioning import bulk
    from portal.settings import network_profiles

    profile = network_profiles.save(network_profiles.ProfileValues(
        name="Known profile", network="mobile"), actor="setup")
    add_local_user("batch-pupil", "batch-pupil@example.com", "user-password-1")
    options = {"network_profile_id": profile.id, "otp_validity": None, "created_by": None,
               "server_url": "https://portal.test"}
    batch = bulk.create_batch([{"username": "batch-pupil"}], name="Known batch", **options)
    preview = bulk.preview_rows([{"username": "batch-pupil"}], **options)
    staged = bulk.stage(preview, name=None, network_profile_id=profile.id, otp_validity=None,
                        created_by=make_admin(username="bulk-admin"))
    return batch.public_id, staged.public_id


def _webhook(device: str) -> tuple[int, int]:
    """A webhook endpoint and one delivery queued for it."""
    from functools import partial

    from portal.audit.log import record
    from portal.database import db
    from portal.webhooks.endpoints import create_endpoint
    from portal.webhooks.events import emit
    from portal.webhooks.models import WebhookDelivery
    endpoint, _secret = create_endpoint("https://hooks.example.com/in", "Security walk",
                                        ["device.enrolled"], actor="setup",
                                        audit=partial(record, actor_type="operator",
                                                      actor="setup"))
    emit("device.enrolled", {"device": {"id": device}})
    db.session.commit()
    return endpoint.id, db.session.scalar(sa.select(WebhookDelivery.id))


def _enrolled_device(qr) -> str:
    """The public id of a device that redeemed the QR code (through the domain function)."""
    import json

    from portal.enrollment.redeem import DeviceInfo, redeem
    extras = json.loads(qr.payload_text())["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"]
    return redeem(qr.public_id, otp=extras["otp"], ticket=None, client_address="192.0.2.1",
                  device=DeviceInfo("R58N000KNOWN", "samsung", "SM-G991B", 33)).device_id


def end_user_client(app, make_qr_code, make_user):
    """A client signed in to the Self Service Portal as a local end user (no admin session)."""
    qr = make_qr_code("ssp", licenses=10)
    user = make_user(password=END_USER_PASSWORD)
    client = app.test_client()
    signed_in = post_sign_in(client, qr.public_id, user.username, END_USER_PASSWORD)
    assert signed_in.status == 303 and "/ssp/start" in signed_in.location, signed_in.html
    start = get(client, signed_in.location)
    assert start.status == 200, start.html
    client.csrf_token = csrf_token_from(start.html)
    client.qr_id = qr.public_id
    return client


def anonymous_client(app):
    """A visitor with a session (and so a valid CSRF token) but without any sign-in, so that
    a refusal proves the access check, not the CSRF check."""
    client = app.test_client()
    client.csrf_token = csrf_token(client, "/admin/login")
    return client
