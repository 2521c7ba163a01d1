"""Every answer the Companion can get is JSON (issue 14, point 8), also those gunicorn gives
before Flask sees the request: a request line or headers over gunicorn's limits, a header
without a colon, a bad method, bytes that are no HTTP/1.x request. A real gunicorn with
gunicorn.conf.py (as ./dev run starts it) on a loopback port, spoken to over raw sockets."""
import json
import socket

import pytest

from tests.support.gunicorn import gunicorn
from tests.support.live import live_app

API = "/api/v1/devices/abc"
READ_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = live_app(tmp_path_factory.mktemp("limits"), "limits")
    with gunicorn(app, workers=1) as url:
        yield url.removeprefix("http://").split(":")


def exchange(server, raw: bytes) -> tuple[int, dict, bytes]:
    """Send raw bytes, read the whole answer (the server closes); (status, headers, body)."""
    host, port = server
    with socket.create_connection((host, int(port)), timeout=READ_TIMEOUT) as connection:
        connection.sendall(raw)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip()
               for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def request(target=API, *, method="GET", headers=(), version=" HTTP/1.1") -> bytes:
    lines = [f"{method} {target}{version}", "Host: portal.test", *headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def contract_error(status, headers, body) -> dict:
    """The API's error shape: JSON {"error": {"code", "message"}}, no HTML."""
    assert headers["content-type"].startswith("application/json"), (status, headers, body)
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)
    assert set(error) == {"error"} and set(error["error"]) == {"code", "message"}, error
    assert error["error"]["message"] and b"<" not in body
    return error["error"]


# (name, raw request, status gunicorn answers)
REFUSED_BY_GUNICORN = [
    ("request line of 10,000 characters", request(API + "?q=" + "x" * 10_000), 414),
    ("200 headers", request(headers=[f"X-Filler-{n}: {n}" for n in range(200)]), 431),
    ("a header of 20 KB", request(headers=["X-Big: " + "b" * 20_000]), 431),
    ("a header without a colon", request(headers=["NoColonHere"]), 400),
    ("a header name with a space", request(headers=["Bad Name: x"]), 400),
    ("a bad method", request(method="G@T"), 400),
    ("a method in lower case", request(method="get"), 400),
    ("a NUL in the path", request(API + "\x00x"), 400),
    ("a space in the path", request(API + " x"), 400),
    ("HTTP/0.9: no version", request(version=""), 400),
    ("an unknown HTTP version", request(version=" HTTP/7.1"), 400),
    ("no request at all, just bytes", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
     400),
    ("a bad chunk size", request("/api/v1/enrollments", method="POST", headers=[
        "Content-Type: application/json", "Transfer-Encoding: chunked"])[:-2]
     + b"\r\nzz\r\n{}\r\n0\r\n\r\n", 400),
]


@pytest.mark.parametrize("raw, status", [case[1:] for case in REFUSED_BY_GUNICORN],
                         ids=[case[0] for case in REFUSED_BY_GUNICORN])
def test_what_gunicorn_refuses_is_answered_in_the_apis_json(server, raw, status):
    answer = exchange(server, raw)

    assert answer[0] == status, answer
    error = contract_error(*answer)
    assert error["code"] == "invalid_request"


@pytest.mark.parametrize("raw, status, code", [
    (request(API + "?q=" + "x" * 4000), 401, "invalid_token"),                 # within the line
    (request(headers=[f"X-Filler-{n}: {n}" for n in range(90)]), 401, "invalid_token"),
    (request(headers=["X-Big: " + "b" * 8000]), 401, "invalid_token"),
    (request("/api/v1/devices/a%00b"), 401, "invalid_token"),                  # an encoded NUL
    (request(method="BREW"), 405, "method_not_allowed"),                         # a well-formed one
])
def test_what_is_within_the_limits_reaches_the_api(server, raw, status, code):
    answer = exchange(server, raw)

    assert answer[0] == status, answer
    assert contract_error(*answer)["code"] == code
