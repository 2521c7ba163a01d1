"""The Pending list: QR codes with the state of their pending enrollments, in one query."""
import sqlalchemy as sa

from portal.accounts.models import PortalUser
from portal.enrollment.models import PendingEnrollment
from portal.provisioning.models import QrCode


def _count(state: str):
    return sa.func.coalesce(sa.func.sum(sa.case((PendingEnrollment.state == state, 1),
                                                else_=0)), 0).label(state)


def qr_codes_with_counts(query: str = "") -> sa.Select:
    """(QrCode, username, pending, used, expired, revoked) rows, newest first, searchable by
    QR ID, user, SSID and alternative address."""
    counts = (sa.select(PendingEnrollment.qr_code_id, _count("pending"), _count("used"),
                        _count("expired"), _count("revoked"))
              .group_by(PendingEnrollment.qr_code_id).subquery())
    statement = (
        sa.select(QrCode, PortalUser.username, counts.c.pending, counts.c.used,
                  counts.c.expired, counts.c.revoked)
        .outerjoin(PortalUser, PortalUser.id == QrCode.user_id)
        .outerjoin(counts, counts.c.qr_code_id == QrCode.id)
        .order_by(QrCode.created_at.desc(), QrCode.id.desc()))
    if query:
        columns = (QrCode.public_id, QrCode.wifi_ssid, QrCode.alternative_email,
                   PortalUser.username, PortalUser.display_name, PortalUser.email)
        statement = statement.where(sa.or_(*(
            sa.func.lower(column).contains(query.lower(), autoescape=True)
            for column in columns)))
    return statement
