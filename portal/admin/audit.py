"""Admin → Audit log: every admin action and enrollment attempt, newest first, filtered."""
from flask import request
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from portal.accounts.decorators import administrator_required
from portal.admin import bp
from portal.audit.listing import ORDER, OUTCOMES, AuditFilters, events, known_actions
from portal.web.forms import strip
from portal.web.htmx import render
from portal.web.pagination import keyset

PAGE_SIZE = 50


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET form that changes nothing

    action = SelectField("Action", choices=[], validators=[Optional()])
    outcome = SelectField("Outcome", validators=[Optional()],
                          choices=[("", "Any outcome")] + [(o, o.title()) for o in OUTCOMES])
    actor = StringField("Actor", filters=[strip], validators=[Optional(), Length(max=256)])
    serial_number = StringField("Serial number", filters=[strip],
                                validators=[Optional(), Length(max=64)])
    target = StringField("QR code or target", filters=[strip],
                         validators=[Optional(), Length(max=256)])
    since = DateField("From", validators=[Optional()])
    until = DateField("To", validators=[Optional()])

    def validate_until(self, field):
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError("The To date must not be before the From date.")

    def to_filters(self) -> AuditFilters:
        """The valid filters; a field with an error is left out (and shows its message)."""
        values = {field.name: field.data for field in self if not field.errors}
        return AuditFilters(**{name: values.get(name) or None
                               for name in AuditFilters.__dataclass_fields__})

    def args(self) -> dict[str, str]:
        """The filters in effect, as query arguments for the Newer/Older links."""
        return {field.name: field.raw_data[0] for field in self
                if field.raw_data and field.raw_data[0] and not field.errors}


@bp.get("/audit")
@administrator_required
def audit_log():
    form = AuditFilterForm(request.args)
    actions = known_actions()
    if form.action.data and form.action.data not in actions:
        actions.append(form.action.data)  # a link to an action not logged yet: no rows, no error
    form.action.choices = [("", "Any action")] + [(action, action) for action in actions]
    form.validate()
    page = keyset(events(form.to_filters()), ORDER, request.args, PAGE_SIZE)
    return render("admin/audit/index.html", "admin/audit/_table.html", page=page, form=form,
                  filter_args=form.args())
