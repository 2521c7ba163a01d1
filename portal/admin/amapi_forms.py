"""The form of Admin → Android Management API."""
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import Length, StopValidation

from portal.settings.amapi import KEY_MAX_BYTES, AmapiValues
from portal.web.forms import strip

_TEXT = {"spellcheck": "false", "autocomplete": "off"}


class KeyTextField(TextAreaField):
    """A pasted key is never written back into the page, not even beside an error: the admin
    pastes (or uploads) it again."""

    def _value(self):
        return ""


class AmapiSettingsForm(FlaskForm):
    enterprise = StringField("Enterprise", filters=[strip], validators=[Length(max=120)],
                             render_kw=dict(_TEXT, placeholder="enterprises/LC0abc1234"))
    key = FileField("Service-account key (.json file)",
                    render_kw={"accept": ".json,application/json"})
    key_text = KeyTextField("…or paste the key file's contents",
                            render_kw=dict(_TEXT, rows=3, placeholder='{"type": '
                                           '"service_account", …}'))
    remove_key = BooleanField("Remove the saved key")
    policy_ssp = StringField("Policy for Self Service Portal", filters=[strip],
                             validators=[Length(max=200)],
                             render_kw=dict(_TEXT, placeholder="fully-managed"))
    policy_auto = StringField("Policy for Automatic Provisioning", filters=[strip],
                              validators=[Length(max=200)],
                              render_kw=dict(_TEXT, placeholder="fully-managed"))
    push_email = StringField("Push service account (optional)", filters=[strip],
                             validators=[Length(max=255)],
                             render_kw=dict(_TEXT, type="email",
                                            placeholder="pubsub-push@project.iam."
                                                        "gserviceaccount.com"))

    def validate_key_text(self, field):
        if field.data and field.data.strip() and self._uploaded() is not None:
            raise StopValidation("Upload the key file or paste its contents, not both.")

    def values(self) -> AmapiValues:
        """The submitted values; no key given (no file, nothing pasted) keeps the saved one."""
        upload = self._uploaded()
        if upload is not None:
            key_text = upload.read(KEY_MAX_BYTES + 1).decode("utf-8-sig", "replace")
            upload.seek(0)
        else:
            key_text = self.key_text.data if (self.key_text.data or "").strip() else None
        return AmapiValues(enterprise=self.enterprise.data or "", key_text=key_text,
                           remove_key=bool(self.remove_key.data),
                           policy_ssp=self.policy_ssp.data or "",
                           policy_auto=self.policy_auto.data or "",
                           push_email=self.push_email.data or "")

    def _uploaded(self):
        data = self.key.data
        return data if data is not None and getattr(data, "filename", None) else None
