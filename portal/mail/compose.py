"""The QR code's mail in the QR's language: text and HTML, the PNG inline and attached.

All mail text lives in the gettext domain "mail" (translations/<lang>/LC_MESSAGES/mail.po).
The Wi-Fi password and the OTP are never written into the text: they are inside the QR only.
"""
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

from babel.dates import format_date, format_time, get_datetime_format
from flask import render_template
from flask_babel import Domain, force_locale

from portal.android.qr import render_png
from portal.enrollment.models import QrCode
from portal.i18n import page_language
from portal.mail.models import OutboxMessage
from portal.mail.server import envelope_address
from portal.vocabulary import EnrollmentOption, Management, NetworkType

mail_domain = Domain(domain="mail")
PNG_BOX_SIZE = 6  # pixels a module: a version-19 code is then about 550 px wide


class NotSendable(Exception):
    """The message can never be sent as it is (its QR code is gone or no longer usable)."""


def mail_language(tag: str | None) -> str:
    """English, German or Italian for a localization tag; custom ones fall back to English."""
    return page_language(tag)


def translate(text: str, lang: str, **variables) -> str:
    with force_locale(mail_language(lang)):
        return mail_domain.gettext(text, **variables)


def compose_qr_mail(message: OutboxMessage, qr_code: QrCode | None, sender: str,
                    now: datetime) -> EmailMessage:
    """The outbox message as MIME. Raises NotSendable when its QR code cannot be used."""
    if qr_code is None:
        raise NotSendable("Not sent: the QR code no longer exists.")
    if qr_code.is_revoked:
        raise NotSendable("Not sent: the QR code was revoked before the mail went out.")
    if qr_code.otp_expires_at is not None and qr_code.otp_expires_at <= now:
        raise NotSendable("Not sent: the QR code's OTP expired before the mail went out.")
    lang = mail_language(message.lang)
    png = render_png(qr_code.payload_text(), PNG_BOX_SIZE)
    domain = envelope_address(sender).rpartition("@")[2] or "localhost"
    cid = f"qr-{qr_code.public_id}@{domain}"
    with force_locale(lang):
        subject = mail_domain.gettext(message.subject)
        context = _context(message, qr_code, lang, cid, subject)
        text = render_template("mail/qr_code.txt", **context)
        html = render_template("mail/qr_code.html", **context)
    mail = _headers(EmailMessage(policy=SMTP), sender, message, subject, domain, lang)
    mail.set_content(text)
    mail.add_alternative(html, subtype="html")
    mail.get_payload()[1].add_related(png, "image", "png", cid=f"<{cid}>",
                                      disposition="inline")
    mail.add_attachment(png, "image", "png", filename=f"qr-code-{qr_code.public_id}.png")
    mail["Content-Language"] = lang  # last: the set_content/add_* calls move Content-* headers
    return mail


def compose_test_mail(sender: str, recipient: str, server: str) -> EmailMessage:
    mail = EmailMessage(policy=SMTP)
    mail["From"], mail["To"] = sender, recipient
    mail["Subject"] = "Test mail from the QR-Code Provisioning portal"
    mail["Date"] = formatdate(localtime=False)
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(render_template("mail/test.txt", server=server))
    return mail


def _headers(mail, sender, message, subject, domain, lang) -> EmailMessage:
    mail["From"], mail["To"], mail["Subject"] = sender, message.recipient, subject
    mail["Date"] = formatdate(localtime=False)
    # The same Message-ID on every attempt, so a receiving server can drop the duplicate of
    # a message that was delivered but not recorded (see delivery.py).
    created = int(message.created_at.timestamp())
    mail["Message-ID"] = f"<outbox-{message.id}-{created}@{domain}>"
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    return mail


def _context(message: OutboxMessage, qr_code: QrCode, lang: str, cid: str,
             subject: str) -> dict:
    """Every paragraph as plain text, translated here, so that the HTML part escapes it."""
    _ = mail_domain.gettext
    user = qr_code.user
    name = (user.display_name or user.username) if user else ""
    file = f"qr-code-{qr_code.public_id}.png"
    greeting = _("Hello %(name)s,", name=name) if message.kind == "qr_to_user" and name \
        else _("Hello,")
    if message.kind == "qr_to_user":
        intro = _("An administrator has prepared the setup of a company device for you.")
    elif message.kind == "qr_to_admin":
        intro = _("A QR code was created to set up a device for %(name)s. You receive it "
                  "because you are a mail recipient of the provisioning portal.",
                  name=name or qr_code.public_id)
    else:
        intro = _("An administrator has prepared a QR code to set up a company device. This "
                  "address was given to be notified.")
    network = _("The device joins the Wi-Fi network “%(ssid)s” by itself.",
                ssid=qr_code.wifi_ssid) if qr_code.network == NetworkType.WIFI \
        else _("The device uses mobile data: keep the SIM or eSIM in it.")
    companion = _follow(qr_code, name)
    steps = [_("Switch on the new or factory-reset device and stay on the welcome screen."),
             _("Tap the same spot on the welcome screen six times in a row. The device opens "
               "a QR-code reader."),
             _("Scan the QR code in this message (it is also attached as %(file)s).",
               file=file) + " " + network,
             companion]
    return {"_": _, "ngettext": mail_domain.ngettext, "lang": lang, "subject": subject,
            "cid": cid, "public_id": qr_code.public_id, "greeting": greeting, "intro": intro,
            "steps": steps, "validity": _validity(qr_code, lang)}


def _follow(qr_code: QrCode, name: str) -> str:
    """The last step: the app that takes over after the scan (the Companion or Google's
    Android Device Policy)."""
    _ = mail_domain.gettext
    auto = qr_code.option == EnrollmentOption.AUTO
    if qr_code.management == Management.ADP:
        return _("Follow Android Device Policy: it installs itself, enrolls the device for "
                 "%(name)s without any typing, and finishes the setup.", name=name) if auto \
            else _("Follow Android Device Policy: it installs itself, opens your company's "
                   "sign-in page, and finishes the setup after you sign in.")
    return _("Follow the Companion app: it installs itself, enrolls the device for "
             "%(name)s without any typing, and finishes the setup.", name=name) if auto \
        else _("Follow the Companion app: it installs itself, asks you to sign in with your "
               "company account and to press Start, and finishes the setup.")


def _validity(qr_code: QrCode, lang: str) -> str:
    _ = mail_domain.gettext
    if qr_code.option != EnrollmentOption.AUTO:
        return _("The QR code can be used until an administrator revokes it.")
    devices = mail_domain.ngettext("The QR code can set up %(num)d device.",
                                   "The QR code can set up up to %(num)d devices.",
                                   qr_code.usage_count)
    if qr_code.otp_expires_at is None:
        return devices + " " + _("It does not expire.")
    return devices + " " + _("It can be used until %(date)s.",
                             date=_long_date_time(qr_code.otp_expires_at, lang))


def _long_date_time(moment: datetime, lang: str) -> str:
    """"27. November 2026, 09:05 UTC": the locale's long date and short time, in UTC."""
    pattern = get_datetime_format("long", locale=lang).replace("'", "")
    return pattern.format(format_time(moment, "short", tzinfo=timezone.utc, locale=lang),
                          format_date(moment, "long", locale=lang)) + " UTC"
