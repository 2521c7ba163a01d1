"""Security headers on every response."""
import math
import time

from flask import Flask, request

from portal.web.htmx import add_vary

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
])


def register(app: Flask) -> None:
    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if app.config["PORTAL_PUBLIC_URL"].lower().startswith("https://"):
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if not request.path.startswith(app.static_url_path):
            # Pages can show OTPs and QR codes: never keep them in a shared or browser cache.
            headers.setdefault("Cache-Control", "no-store")
        if response.status_code == 429 and "Retry-After" not in headers:
            headers["Retry-After"] = str(_seconds_until_reset())
        return add_vary(response)


def _seconds_until_reset() -> int:
    # Flask-Limiter's own headers are off (they would put Retry-After on every response);
    # a refused request still says when to try again.
    from portal.extensions import limiter
    current = limiter.current_limit
    return max(1, math.ceil(current.reset_at - time.time())) if current else 60
