"""Devices → Pending: the license figures and the QR codes waiting for devices."""
import sqlalchemy as sa
from flask import redirect, request, url_for

from portal.accounts.decorators import admin_required
from portal.admin import bp
from portal.database import db
from portal.licensing import seats
from portal.provisioning.models import QrCode
from portal.web.htmx import render

PAGE_SIZE = 25


@bp.get("/")
@admin_required
def home():
    return redirect(url_for("admin.pending"))


@bp.get("/devices/")
@admin_required
def devices():
    return redirect(url_for("admin.pending"))


@bp.get("/devices/pending")
@admin_required
def pending():
    page = db.paginate(sa.select(QrCode).order_by(QrCode.created_at.desc(), QrCode.id.desc()),
                       page=request.args.get("page", 1, type=int), per_page=PAGE_SIZE,
                       error_out=False)
    return render("admin/devices/pending.html", "admin/devices/_qr_table.html",
                  page=page, figures=seats.figures())


@bp.get("/devices/licenses")
@admin_required
def license_figures():
    return render("admin/devices/pending.html", "admin/devices/_license_figures.html",
                  figures=seats.figures(), page=None)
