"""Devices → Pending (license figures and QR codes waiting for devices) and Devices → Devices
(every device: the list, its CSV export, one device with its timeline, retirement)."""
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import SelectField, StringField
from wtforms.validators import Length, Optional

from portal.accounts.decorators import (admin_required, administrator_required,
                                        is_administrator)
from portal.admin import bp
from portal.admin.forms import EmptyForm, SearchForm
from portal.amapi.tasks import owed_for_device
from portal.enrollment import devices as fleet
from portal.enrollment.pending import current_figures
from portal.enrollment import retirement
from portal.provisioning.listing import (ORDER, filters_from, qr_code_keys, qr_code_rows,
                                        qr_code_total)
from portal.vocabulary import DeviceState
from portal.web.csv_export import csv_response
from portal.web.forms import FilterForm, strip
from portal.web.htmx import go, render
from portal.web.pagination import keyset, paginate

PAGE_SIZE = 25
TIMELINE_PAGE_SIZE = 50
STATE_CHOICES = [("", "All states"), (DeviceState.PROVISIONING, "Provisioning"),
                 (DeviceState.ENROLLED, "Enrolled"), (DeviceState.FAILED, "Failed"),
                 (DeviceState.RETIRED, "Retired"), (fleet.STUCK, "Stuck")]


class DeviceSearchForm(FilterForm):
    q = StringField("Search", filters=[strip], validators=[Optional(), Length(max=64)])
    state = SelectField("State", choices=STATE_CHOICES, default="", validate_choice=True)


@bp.get("/")
@admin_required
def home():
    return redirect(url_for("admin.pending"))


def _filters() -> tuple[DeviceSearchForm, str, str]:
    """The search form and what it asks for; anything invalid reads as no filter."""
    search = DeviceSearchForm(request.args)
    if not search.validate():
        return search, "", ""
    return search, search.q.data or "", search.state.data or ""


@bp.get("/devices/")
@admin_required
def devices():
    search, query, state = _filters()
    # Not counted: a count reads every device (PostgreSQL), and the list must cost the same
    # at a million devices as at a thousand.
    page = keyset(fleet.device_keys(query, state), fleet.ORDER, request.args, PAGE_SIZE,
                  scalars=False)
    stuck_hours = current_app.config.get("DEVICE_STUCK_AFTER_MINUTES", 120) / 60
    return render("admin/devices/index.html", "admin/devices/_device_table.html",
                  page=page, rows=fleet.device_rows(page.items), search=search, query=query,
                  state=state, stuck_hours=stuck_hours, android_version=fleet.android_version)


@bp.get("/devices/export.csv")
@admin_required
def export_devices():
    _, query, state = _filters()
    return csv_response("devices.csv", fleet.CSV_HEADER, fleet.export_rows(query, state))


def _load(device_id: str) -> fleet.DeviceView:
    found = fleet.find_device(device_id)
    if found is None:
        abort(404)
    return found


@bp.get("/devices/<device_id>")
@admin_required
def device(device_id):
    view = _load(device_id)
    events = paginate(fleet.timeline(view.device, view.qr_code.public_id), request.args,
                      TIMELINE_PAGE_SIZE)
    return render("admin/devices/device.html", "admin/devices/_timeline.html", view=view,
                  device=view.device, events=events, may_retire=is_administrator(),
                  android_version=fleet.android_version)


@bp.get("/devices/<device_id>/retire")
@administrator_required
def confirm_retire_device(device_id):
    view = _load(device_id)
    return render_template("admin/devices/retire.html", device=view.device, form=EmptyForm())


@bp.post("/devices/<device_id>/retire")
@administrator_required
def retire_device(device_id):
    view = _load(device_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    device = view.device
    try:
        released = retirement.retire_device(device, retired_by=current_user)
        flash(f"Device {device.serial_number} ({device.model}) was retired; "
              + ("its license returned to the pool." if released
                 else "it held no license (its provisioning had failed).")
              + _at_google(device), "info")
    except retirement.AlreadyRetired as exc:
        flash(str(exc), "error")
    return go(url_for("admin.device", device_id=device.public_id))


def _at_google(device) -> str:
    """An Android Device Policy device: whether Google deleted (and wiped) it already."""
    if not device.amapi_name:
        return ""
    if owed_for_device(device.id):
        return " Deleting it at Google failed for now; the portal tries again (see below)."
    return " It was deleted at Google and wiped."


@bp.get("/devices/pending")
@admin_required
def pending():
    search = SearchForm(request.args)
    query = search.q.data if search.validate() else ""
    figures, filters = current_figures(), filters_from(request.args)
    filtered = query or any(filters.values())
    page = keyset(qr_code_keys(query, **filters), ORDER, request.args, PAGE_SIZE,
                  scalars=False, total=None if filtered else qr_code_total())
    return render("admin/devices/pending.html", "admin/devices/_qr_table.html",
                  page=page, rows=qr_code_rows(page.items), figures=figures, search=search,
                  query=query)


@bp.get("/devices/licenses")
@admin_required
def license_figures():
    return render("admin/devices/pending.html", "admin/devices/_license_figures.html",
                  figures=current_figures(), page=None, rows=[], search=SearchForm(),
                  query="")
