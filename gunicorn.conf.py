"""gunicorn's settings for the portal, read by `./dev run`, the tests' servers and production
(`gunicorn -c gunicorn.conf.py wsgi:app`; bind and workers stay on the command line).

gunicorn refuses some requests itself, before Flask sees them: a request line or headers over
the limits below, a header without a colon, a bad method or version, a broken chunked body.
Its own answer is an HTML page; here it is the API's error shape instead,
{"error": {"code": "invalid_request", "message": …}} (portal/web/json_errors.py), so the Companion
never reads HTML (companion-api.md §2). Within the limits, Flask answers as usual.
"""
import json

from gunicorn import util

# The longest request line (method, path and query, version), in bytes: 414 above it.
limit_request_line = 4094
# At most this many header fields, each at most this many bytes: 431 above either.
limit_request_fields = 100
limit_request_field_size = 8190

_MESSAGES = {
    400: "The request is not valid HTTP/1.1: its request line, a header or its chunked body "
         "cannot be read.",
    403: "The request is not allowed.",
    414: f"The request line is longer than {limit_request_line} bytes.",
    417: "The Expect header asks for something the server does not do.",
    431: f"The request has more than {limit_request_fields} header fields, or one longer "
         f"than {limit_request_field_size} bytes.",
    501: "The request's Transfer-Encoding is not supported.",
}


def write_json_error(sock, status_int, reason, mesg):
    """gunicorn.util.write_error's replacement: the same status, as JSON. The message is ours,
    never the request's bytes that gunicorn would quote."""
    if status_int >= 500 and status_int != 501:
        error = {"code": "internal_error", "message": "The server could not complete the request."}
    else:
        error = {"code": "invalid_request",
                 "message": _MESSAGES.get(status_int, "The request is not valid.")}
    body = json.dumps({"error": error}, separators=(",", ":")).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Content-Type-Options: nosniff\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


# The one place gunicorn writes its error answers (gunicorn.workers.base.Worker.handle_error);
# set in the master, so every worker it forks has it.
util.write_error = write_json_error
