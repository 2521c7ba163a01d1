"""Devices → Pending: the license figures and the QR codes waiting for devices."""
from flask import redirect, request, url_for

from portal.accounts.decorators import admin_required
from portal.admin import bp
from portal.admin.forms import SearchForm
from portal.enrollment.pending import current_figures
from portal.provisioning.listing import ORDER, qr_code_keys, qr_code_rows, qr_code_total
from portal.web.htmx import render
from portal.web.pagination import keyset

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
    search = SearchForm(request.args)
    query = search.q.data if search.validate() else ""
    figures = current_figures()
    page = keyset(qr_code_keys(query), ORDER, request.args, PAGE_SIZE, scalars=False,
                  total=None if query else qr_code_total())
    return render("admin/devices/pending.html", "admin/devices/_qr_table.html",
                  page=page, rows=qr_code_rows(page.items), figures=figures, search=search,
                  query=query)


@bp.get("/devices/licenses")
@admin_required
def license_figures():
    return render("admin/devices/pending.html", "admin/devices/_license_figures.html",
                  figures=current_figures(), page=None, rows=[], search=SearchForm(),
                  query="")
