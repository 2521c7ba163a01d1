"""The SMTP conversation, one step at a time, so that a failure names the step and the server's
answer: connect, TLS, EHLO, sign in, sender, recipient, message."""
import base64
import smtplib
import socket
import ssl
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

STEP_NAMES = {"connect": "Connect", "tls": "TLS", "ehlo": "EHLO", "auth": "Sign in",
              "sender": "Sender", "recipient": "Recipient", "data": "Message"}
MAX_DETAIL = 500


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str                     # "none" | "starttls" | "tls" (implicit TLS)
    sender: str                       # the From header; the envelope uses its address
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0             # seconds, for connecting and for each answer
    ca_file: str | None = None        # trusted in addition to the system's CAs


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


class DeliveryError(Exception):
    """The server or the network refused the message at `step`. `permanent` means sending the
    same message again cannot help (a 5xx for the recipient or for the message itself)."""

    def __init__(self, step: str, detail: str, *, permanent: bool = False,
                 code: int | None = None):
        super().__init__(f"{STEP_NAMES[step]}: {detail}")
        self.step, self.detail, self.permanent, self.code = step, detail, permanent, code


Report = Callable[[str, str], None]


def deliver(config: SmtpConfig, recipient: str, message: bytes, envelope_from: str,
            report: Report | None = None) -> str:
    """Send `message` to one recipient and return the server's answer to it.

    Raises DeliveryError; its text never contains the SMTP password. `report(step, detail)` is
    called after each step that succeeded (the console's test shows them).
    """
    report = report or (lambda step, detail: None)
    with _signed_in(config, report) as smtp:
        with _step("sender", config):
            _expect(smtp.mail(envelope_from), "sender", (250,), permanent=False)
        report("sender", f"{envelope_from} accepted")
        with _step("recipient", config):
            # A 5xx here is the recipient's mailbox or domain: sending again cannot help.
            _expect(smtp.rcpt(recipient), "recipient", (250, 251), permanent=True)
        report("recipient", f"{recipient} accepted")
        with _step("data", config):
            code, reply = smtp.data(message)
            _expect((code, reply), "data", (250,), permanent=True)
        answer = _reply(code, reply)
        report("data", f"accepted ({answer})")
        return answer


def probe(config: SmtpConfig, report: Report | None = None) -> None:
    """Connect, secure and sign in as deliver() would, then quit without sending anything.

    Raises DeliveryError (password scrubbed); `report` is called after each step that worked.
    """
    with _signed_in(config, report or (lambda step, detail: None)):
        pass


@contextmanager
def _signed_in(config: SmtpConfig, report: Report):
    """A connection secured and signed in as the settings say, quit on leaving; every
    DeliveryError raised inside comes out with the password scrubbed."""
    try:
        smtp = _connect(config, report)
    except DeliveryError as error:
        raise _scrubbed(error, config) from None
    try:
        _secure_and_sign_in(smtp, config, report)
        yield smtp
    except DeliveryError as error:
        raise _scrubbed(error, config) from None
    finally:
        _quit(smtp)


def tls_context(config: SmtpConfig) -> ssl.SSLContext:
    """Certificates and host names are always verified; ca_file adds a CA to the system's."""
    return _tls_context(config.ca_file)


@lru_cache(maxsize=8)
def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    # Loading the system's CAs takes ~30 ms; one context serves every connection.
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def _connect(config: SmtpConfig, report: Report) -> smtplib.SMTP:
    # The host goes to the constructor (which connects): STARTTLS checks the certificate
    # against the host name given there.
    with _step("connect", config):
        if config.security == "tls":
            smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout,
                                    context=tls_context(config))
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    report("connect", f"connected to {config.host}:{config.port}")
    return smtp


def _secure_and_sign_in(smtp: smtplib.SMTP, config: SmtpConfig, report: Report) -> None:
    with _step("ehlo", config):
        if smtp.ehlo()[0] != 250:  # an old server that knows only HELO
            _expect(smtp.helo(), "ehlo", (250,), permanent=False)
    report("ehlo", "the server greeted us")
    if config.security == "starttls":
        if not smtp.has_extn("starttls"):
            raise DeliveryError("tls", "the server does not offer STARTTLS; choose another "
                                       "connection security or port")
        with _step("tls", config):
            smtp.starttls(context=tls_context(config))
            _expect(smtp.ehlo(), "ehlo", (250,), permanent=False)
    report("tls", _tls_detail(smtp) if config.security != "none"
           else "not used: the connection is not encrypted")
    if not config.username:
        return
    if not smtp.has_extn("auth"):
        raise DeliveryError("auth", "the server does not offer AUTH"
                            + (" without TLS" if config.security == "none" else ""))
    with _step("auth", config):
        smtp.login(config.username, config.password or "")
    report("auth", f"signed in as {config.username}")


def _expect(answer: tuple[int, bytes], step: str, ok: tuple[int, ...], *, permanent: bool):
    code, reply = answer
    if code not in ok:
        raise DeliveryError(step, f"refused: {_reply(code, reply)}",
                            permanent=permanent and 500 <= code < 600, code=code)


@contextmanager
def _step(step: str, config: SmtpConfig):
    """Turn whatever smtplib, ssl or the socket raise during one step into a DeliveryError."""
    try:
        yield
    except DeliveryError:
        raise
    except Exception as exc:
        code = getattr(exc, "smtp_code", None)
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            detail = ("the server refused the user name or password "
                      f"({_reply(code, exc.smtp_error)})")
        elif isinstance(exc, smtplib.SMTPResponseException):
            detail = f"refused: {_reply(code, exc.smtp_error)}"
        else:
            detail = _network_detail(exc, config)
        # A TLS failure is reported as the TLS step, also when it happens while connecting.
        raise DeliveryError("tls" if isinstance(exc, ssl.SSLError) else step, detail,
                            code=code) from exc


def _network_detail(exc: BaseException, config: SmtpConfig) -> str:
    where = f"{config.host}:{config.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the server's certificate is not trusted ({exc.verify_message or exc.reason})"
    if isinstance(exc, ssl.SSLError):
        return f"the TLS handshake failed ({exc.reason or exc})"
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return f"no answer from {where} within {config.timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}: no mail server listens there"
    if isinstance(exc, socket.gaierror):
        return f"the host name {config.host} cannot be resolved ({exc.strerror})"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"the server closed the connection ({exc})"
    if isinstance(exc, smtplib.SMTPException):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{where}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def _tls_detail(smtp: smtplib.SMTP) -> str:
    sock = smtp.sock
    if isinstance(sock, ssl.SSLSocket):
        return f"{sock.version()}, certificate verified"
    return "encrypted"


def _reply(code: int | None, reply: bytes | str | None) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else (reply or "")
    return " ".join(f"{code or ''} {' '.join(text.split())}".split())


def _scrubbed(error: DeliveryError, config: SmtpConfig) -> DeliveryError:
    """The same error with the password (plain, or as AUTH PLAIN/LOGIN base64) cut out."""
    detail = error.detail
    password = config.password
    if password:
        user = (config.username or "").encode()
        forms = {password, base64.b64encode(password.encode()).decode(),
                 base64.b64encode(b"\0" + user + b"\0" + password.encode()).decode()}
        for form in sorted(forms, key=len, reverse=True):
            detail = detail.replace(form, "••••")
    if len(detail) > MAX_DETAIL:
        detail = detail[:MAX_DETAIL - 1] + "…"
    clean = DeliveryError(error.step, detail, permanent=error.permanent, code=error.code)
    clean.__cause__ = None
    return clean


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
