"""Admin → Audit log: every admin action and enrollment attempt, newest first, filtered, and
its export as CSV."""
from flask import request
from wtforms import DateField, SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from portal.accounts.decorators import administrator_required
from portal.admin import bp
from portal.audit import attempts
from portal.audit.listing import (CSV_HEADER, ORDER, OUTCOMES, AuditFilters, action_groups,
                                  csv_rows, events, known_actions)
from portal.database import utcnow
from portal.web.csv_export import csv_response
from portal.web.forms import FilterForm, strip
from portal.web.htmx import render
from portal.web.pagination import keyset

PAGE_SIZE = 50
INVERTED = "The To date must not be before the From date."


class AuditFilterForm(FilterForm):
    action = SelectField("Action", choices=[], validators=[Optional()])
    outcome = SelectField("Outcome", validators=[Optional()],
                          choices=[("", "Any outcome")] + [(o, o.title()) for o in OUTCOMES])
    actor = StringField("Actor (starts with)", filters=[strip], validators=[
        Optional(), Length(max=256, message="An actor has at most 256 characters.")])
    serial_number = StringField("Serial number (starts with)", filters=[strip], validators=[
        Optional(), Length(max=64, message="A serial number has at most 64 characters.")])
    target = StringField("QR code or target", filters=[strip], validators=[
        Optional(), Length(max=256, message="A target has at most 256 characters.")])
    since = DateField("From", validators=[Optional()])
    until = DateField("To", validators=[Optional()])

    def validate_until(self, field):
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError(INVERTED)

    def to_filters(self, groups: dict[str, tuple[str, ...]]) -> AuditFilters:
        """The valid filters; a field with an error is left out (and shows its message),
        except a To before the From: that range holds no event, and none is shown."""
        values = {field.name: field.data for field in self
                  if not field.errors or field.errors == [INVERTED]}
        values["action"] = groups.get(values.get("action") or "", values.get("action"))
        return AuditFilters(**{name: values.get(name) or None
                               for name in AuditFilters.__dataclass_fields__})

    def args(self) -> dict[str, str]:
        """The filters in effect, as query arguments for the Newer/Older links and export."""
        return {field.name: field.raw_data[0] for field in self
                if field.raw_data and field.raw_data[0] and not field.errors}


def _filter_form() -> tuple[AuditFilterForm, AuditFilters]:
    form = AuditFilterForm(request.args)
    # Attempts past a limit are offered before the first one: an admin looks for them.
    actions = sorted(set(known_actions()) | set(attempts.ACTIONS))
    groups = action_groups(actions)
    choices = [(group, f"{group} (all {len(members)})") for group, members in groups.items()]
    choices += [(action, action) for action in actions]
    if form.action.data and form.action.data not in dict(choices):
        choices.append((form.action.data, form.action.data))  # not logged yet: no rows
    form.action.choices = [("", "Any action")] + choices
    form.validate()
    return form, form.to_filters(groups)


@bp.get("/audit")
@administrator_required
def audit_log():
    form, filters = _filter_form()
    page = keyset(events(filters), ORDER, request.args, PAGE_SIZE)
    return render("admin/audit/index.html", "admin/audit/_table.html", page=page, form=form,
                  filter_args=form.args())


@bp.get("/audit/export.csv")
@administrator_required
def export_audit_log():
    """The filtered log as CSV, streamed; details as JSON text in one column."""
    _, filters = _filter_form()
    filename = f"audit-log-{utcnow():%Y%m%d-%H%M%S}.csv"
    return csv_response(filename, CSV_HEADER, csv_rows(filters))
