"""The GET forms that search and filter the lists: no CSRF token, no control characters."""
import pytest
from werkzeug.datastructures import MultiDict
from wtforms import SelectField, StringField

from portal.web.forms import CONTROL_CHARACTERS, FilterForm, strip


class _Filters(FilterForm):
    q = StringField("Search", filters=[strip])
    state = SelectField("State", choices=[("", "All"), ("open", "Open")])


def _form(**args) -> _Filters:
    return _Filters(formdata=MultiDict(args))


def test_a_filter_form_needs_no_csrf_token(app):
    with app.test_request_context("/admin/list?q=Zürich ✓"):
        form = _form(q="Zürich ✓ 日本", state="open")
        assert form.validate() and form.q.data == "Zürich ✓ 日本"


@pytest.mark.parametrize("value", ["\x00", "abc\x00def", "line\nbreak", "tab\tin", "\x7f"])
def test_a_control_character_in_any_text_field_is_explained_beside_it(app, value):
    with app.test_request_context("/admin/list"):
        form = _form(q=value, state="open")
        assert not form.validate()
        assert form.q.errors == [CONTROL_CHARACTERS] and form.state.errors == []


def test_a_field_that_failed_its_own_check_keeps_that_message_alone(app):
    with app.test_request_context("/admin/list"):
        form = _form(state="\x00")
        assert not form.validate() and form.state.errors == ["Not a valid choice."]
