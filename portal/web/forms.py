"""One way to put the domain's messages beside a form's fields, the forms' shared filters,
and the base of the GET forms that search and filter the lists."""
from collections.abc import Mapping

from flask_wtf import FlaskForm

CONTROL_CHARACTERS = "Remove the control characters (such as NUL) from this field."


def strip(value):
    """A WTForms filter: surrounding blanks are never part of what the admin meant."""
    return value.strip() if isinstance(value, str) else value


def show_errors(form, errors: Mapping[str, str], *, first_only: bool = False) -> None:
    """Add each message to the field of the same name; a message for no field of the form
    goes to form.form_errors, shown in the form's error summary. first_only: a field the
    form's own checks flagged keeps that message alone (both often check the same rule)."""
    form.form_errors = list(getattr(form, "form_errors", None) or [])
    for name, message in errors.items():
        field = form._fields.get(name) if name else None
        if field is None:
            form.form_errors.append(message)
        elif message not in field.errors and not (first_only and field.errors):
            field.errors = list(field.errors) + [message]


def clear_errors(form) -> None:
    """Forget every message: a re-render for a choice made is not a refused Save."""
    form.form_errors = []
    for field in form:
        field.errors = []


class FilterForm(FlaskForm):
    """A GET form that searches or filters a list and changes nothing, so it has no CSRF
    token. None of its fields holds a control character: an edited URL's NUL never reaches
    the database, where PostgreSQL's text cannot hold one and SQLite's FTS5 reads a query
    only up to it. A view uses a field's data only when validate() passed (or the field has
    no error), and render_field shows the message beside it."""

    class Meta:
        csrf = False

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for field in self:
            if isinstance(field.data, str) and not field.errors and \
                    any(ord(c) < 32 or ord(c) == 127 for c in field.data):
                field.errors.append(CONTROL_CHARACTERS)
                valid = False
        return valid
