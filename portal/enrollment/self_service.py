"""What the Self Service Portal reads and hands out: its QR code, and the enrollment link."""
from urllib.parse import quote, urlencode

import sqlalchemy as sa

from portal.database import db
from portal.enrollment.models import QrCode, is_public_id
from portal.enrollment.tickets import issue_ticket
from portal.settings.companion import enrollment_link_scheme
from portal.vocabulary import EnrollmentOption

def find_ssp_qr_code(public_id: str | None) -> QrCode | None:
    """The Self Service Portal QR code with this public id (revoked ones too), else None."""
    if not is_public_id(public_id):
        return None
    return db.session.scalar(sa.select(QrCode).where(
        QrCode.public_id == public_id, QrCode.option == EnrollmentOption.SSP))


def qr_code_language(public_id: str | None) -> str | None:
    """The language of the QR code with this public id (of either option), else None."""
    if not is_public_id(public_id):
        return None
    return db.session.scalar(sa.select(QrCode.lang).where(QrCode.public_id == public_id))


def issue_enrollment_link(qr_code: QrCode, user, server_url: str) -> str:
    """A fresh ticket for this user and QR code (committed), in the link that opens the
    Companion: <scheme>://enroll?server_url=…&qr_id=…&ticket=… (companion-api.md)."""
    ticket = issue_ticket(qr_code, user)
    return f"{enrollment_link_scheme()}://enroll?" + urlencode(
        {"server_url": server_url, "qr_id": qr_code.public_id, "ticket": ticket},
        quote_via=quote)
