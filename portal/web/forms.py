"""One way to put the domain's messages beside a form's fields, and the forms' shared filters."""
from collections.abc import Mapping


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
