"""The forms of Admin → Webhooks: an endpoint's address, description and events; Rotate secret."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectMultipleField, StringField
from wtforms.validators import Length
from wtforms.widgets import CheckboxInput, ListWidget

from portal.web.forms import strip
from portal.webhooks.endpoints import MAX_DESCRIPTION_LENGTH, MAX_URL_LENGTH
from portal.webhooks.events import EVENT_TYPES


class WebhookEndpointForm(FlaskForm):
    url = StringField("URL", filters=[strip], validators=[Length(max=MAX_URL_LENGTH)],
                      render_kw={"spellcheck": "false", "autocomplete": "off",
                                 "inputmode": "url",
                                 "placeholder": "https://hooks.example.com/provisioning"})
    description = StringField("Description (optional)", filters=[strip],
                              validators=[Length(max=MAX_DESCRIPTION_LENGTH)],
                              render_kw={"placeholder": "Asset management"})
    events = SelectMultipleField("Events", choices=[(name, f"{name}: {meaning}")
                                                   for name, meaning in EVENT_TYPES.items()],
                                 widget=ListWidget(prefix_label=False),
                                 option_widget=CheckboxInput(), validate_choice=False)


class RotateSecretForm(FlaskForm):
    keep_previous = BooleanField("Keep signing with the old secret too for a while, so the "
                                 "receiving system can switch without losing events")
