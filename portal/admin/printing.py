"""Print batch and Download PDF: the printable sheets of a bulk batch, or of one QR code, as one
PDF (portal.provisioning.printing). Same roles as the printable sheet; a GET writes nothing."""
import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Response, abort, render_template, request

from portal.accounts.decorators import admin_required
from portal.admin import bp
from portal.admin.qr_codes import _gone, _load
from portal.database import db
from portal.enrollment.models import Batch, QrCode, is_public_id
from portal.provisioning.printing import PrintingError, in_part, print_parts, print_sheets


@bp.get("/batches/<batch_id>/print.pdf")
@admin_required
def print_batch(batch_id):
    """Every QR code of the batch, one page each in creation (CSV row) order. Revoked ones are
    left out: the file's name then says how many pages of how many QR codes it holds. A batch
    of more than printing.PART_PAGES active QR codes prints in parts (?part=2: the second)."""
    if not is_public_id(batch_id):
        abort(404)
    batch = db.first_or_404(sa.select(Batch).where(Batch.public_id == batch_id))
    codes = db.session.scalars(
        sa.select(QrCode).where(QrCode.batch_id == batch.id)
        .options(so.selectinload(QrCode.user)).order_by(QrCode.id)).all()
    active = [qr for qr in codes if not qr.is_revoked]
    parts = print_parts(len(active))
    part = request.args.get("part", "1")
    if not part.isdigit() or (parts and not 1 <= int(part) <= len(parts)) \
            or (not parts and part != "1"):
        abort(404)
    part = int(part)
    try:
        sheets = print_sheets(in_part(active, part) if active else codes)
    except PrintingError as exc:
        return render_template("admin/printing/nothing.html", batch=batch, reason=str(exc)), \
            410 if codes else 409
    name = f"qr-codes-batch-{batch.public_id}"
    if len(parts) > 1:
        name += f"-part-{part}-of-{len(parts)}"
    if len(active) < len(codes):
        name += f"-{len(active)}-of-{len(codes)}-revoked-left-out"
    return _pdf(sheets.pdf, f"{name}.pdf")


@bp.get("/qr-codes/<public_id>/print.pdf")
@admin_required
def print_qr_code_pdf(public_id):
    qr = _load(public_id)
    if qr.is_revoked:
        return _gone(qr)
    return _pdf(print_sheets([qr]).pdf, f"qr-code-{qr.public_id}.pdf")


def _pdf(body: bytes, filename: str) -> Response:
    # The QR code holds the OTP and the Wi-Fi password: not for caches.
    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store"})
