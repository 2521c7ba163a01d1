"""Admin → API tokens: create (the token shown once), refused fields, revoke after asking,
the audit log; only Administrators."""
import re

import sqlalchemy as sa

from portal.accounts.api_tokens import authenticate
from portal.accounts.models import ApiToken
from portal.audit.models import AuditEvent
from tests.conftest import post_form
from tests.support.pages import html_of

PAGE = "/admin/settings/api-tokens"


def _token_in(html: str) -> str | None:
    found = re.search(r'id="new-token"[^>]*value="(qrp_[^"]+)"', html)
    return found.group(1) if found else None


def test_create_shows_the_token_once_and_it_works(db, admin_client):
    response = post_form(admin_client, PAGE, name="HR system", scope="provision",
                         expires_in="30")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = html_of(response)
    text = _token_in(html)
    assert text and "it is not shown again" in html
    token = authenticate(text)
    assert (token.name, token.scope) == ("HR system", "provision")
    listing = html_of(admin_client.get(PAGE))
    assert "HR system" in listing and text not in listing and text.split("_", 2)[2] not in listing
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "api_token.create"))
    assert event.actor == admin_client.admin.username and event.target == "HR system"
    assert text.split("_", 2)[2] not in repr(event.details)


def test_bad_input_is_named_beside_its_field_and_nothing_is_saved(db, admin_client):
    post_form(admin_client, PAGE, name="Nightly", scope="read", expires_in="90")
    response = post_form(admin_client, PAGE, name="nightly", scope="admin", expires_in="date",
                         expires_on="")
    assert response.status_code == 422
    html = html_of(response)
    assert "A token named &#39;nightly&#39; already exists" in html or \
        "A token named 'nightly' already exists" in html
    assert "Choose the date the token stops working." in html
    assert _token_in(html) is None
    response = post_form(admin_client, PAGE, name="", scope="admin", expires_in="90")
    html = html_of(response)
    assert "Enter a name for the token" in html and "Choose Read or Provision." in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 1


def test_revoke_asks_first_then_the_token_is_refused(db, admin_client, client):
    html = html_of(post_form(admin_client, PAGE, name="Script", scope="read", expires_in="90"))
    text = _token_in(html)
    token = db.session.scalar(sa.select(ApiToken))
    confirm = html_of(admin_client.get(f"{PAGE}/{token.id}/revoke"))
    assert "Revoke the API token Script?" in confirm
    assert authenticate(text) is not None  # asking changed nothing
    response = post_form(admin_client, f"{PAGE}/{token.id}/revoke", page=f"{PAGE}/{token.id}/revoke")
    assert response.status_code == 303
    assert authenticate(text) is None
    assert "Revoked" in html_of(admin_client.get(PAGE))
    assert db.session.scalar(sa.select(AuditEvent.target)
                             .where(AuditEvent.action == "api_token.revoke")) == "Script"
    again = post_form(admin_client, f"{PAGE}/{token.id}/revoke", page=PAGE)
    assert again.status_code == 303  # back to the list, with the message
    assert "already revoked" in html_of(admin_client.get(PAGE))
    assert admin_client.get(f"{PAGE}/999999/revoke").status_code == 404


def test_only_administrators(helpdesk_client):
    assert helpdesk_client.get(PAGE).status_code == 403
    assert "API tokens" not in html_of(helpdesk_client.get("/admin/devices/pending"))
