"""The client's address, honouring X-Forwarded-For only from trusted proxies."""
from flask import current_app, request


def client_address() -> str:
    """The address of the client, as the last trusted proxy saw it.

    With TRUSTED_PROXIES = n, the n right-most X-Forwarded-For entries were appended by our own
    proxies; the entry just left of them is the client. Anything further left is client-supplied
    and ignored, so a device cannot spoof its way past throttling.
    """
    trusted = current_app.config.get("TRUSTED_PROXIES", 0)
    remote = request.remote_addr or "unknown"
    if trusted <= 0:
        return remote
    forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < trusted:
        return remote
    return forwarded[-trusted]
