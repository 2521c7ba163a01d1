"""Addresses as devices and identity providers reach them: PORTAL_PUBLIC_URL, not the request's."""
from flask import current_app, url_for


def public_url(endpoint: str, **values) -> str:
    """The URL of an endpoint under PORTAL_PUBLIC_URL (behind a proxy the request's host may be
    an internal one)."""
    return current_app.config["PORTAL_PUBLIC_URL"] + url_for(endpoint, **values)


def azure_callback_url() -> str:
    """The redirect URI to register with Azure AD: the Self Service Portal's callback."""
    return public_url("selfservice.azure_callback")
