"""The entry page of the Self Service Portal for a QR code."""
import sqlalchemy as sa
from flask import abort, render_template, request

from portal.database import db
from portal.provisioning.models import QrCode
from portal.selfservice import bp


@bp.get("/")
def index():
    qr_id = request.args.get("qr_id", "")
    qr_code = db.session.scalar(sa.select(QrCode).where(QrCode.public_id == qr_id[:32],
                                                        QrCode.option == "ssp"))
    if qr_code is None:
        abort(404)
    if qr_code.is_revoked:
        abort(403)
    return render_template("selfservice/sign_in.html", qr_code=qr_code)
