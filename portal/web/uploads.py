"""Request bodies: MAX_CONTENT_LENGTH (2 MiB) everywhere, more where a view allows an upload."""
from collections.abc import Callable

from flask import Flask, current_app, request


def allows_upload(max_bytes: Callable[[], int]):
    """Let this view's requests carry up to max_bytes() bytes (e.g. the Companion's APK)."""
    def mark(view):
        view.max_upload_bytes = max_bytes
        return view
    return mark


def register(app: Flask) -> None:
    # First of all before_request functions: the CSRF check reads the body, under this limit.
    app.before_request_funcs.setdefault(None, []).insert(0, _allow_upload)


def _allow_upload() -> None:
    view = current_app.view_functions.get(request.endpoint)
    limit = getattr(view, "max_upload_bytes", None)
    if limit is not None:
        request.max_content_length = limit()
