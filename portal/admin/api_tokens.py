"""Admin → API tokens: the Admin API's bearer tokens (Administrators only). A new token is
shown once, on the page that answers its creation, and never again: only its keyed hash is
kept. Revoking one asks first."""
from flask import abort, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, RadioField, SelectField, StringField
from wtforms.validators import Length, Optional

from portal.accounts import api_tokens
from portal.accounts.api_tokens import DEFAULT_EXPIRY_DAYS, EXPIRY_DAYS, ApiTokenError
from portal.accounts.decorators import administrator_required
from portal.admin import bp
from portal.admin.forms import EmptyForm
from portal.database import utcnow
from portal.vocabulary import ApiScope
from portal.web.forms import show_errors, strip
from portal.web.htmx import make_response, refused, render, saved

T = "admin/api_tokens/"
ON_A_DATE = "date"


class ApiTokenForm(FlaskForm):
    name = StringField("Name", filters=[strip], validators=[
        Length(max=api_tokens.MAX_NAME_LENGTH,
               message=f"The name can be at most {api_tokens.MAX_NAME_LENGTH} characters.")])
    scope = RadioField("Scope", default=ApiScope.READ.value, validate_choice=False, choices=[
        (ApiScope.READ.value, "Read: QR codes, devices and licenses, without secrets"),
        (ApiScope.PROVISION.value, "Provision: everything, also creating and revoking QR "
                                   "codes, their images, payloads and OTPs, retiring devices")])
    expires_in = SelectField("Expires", default=str(DEFAULT_EXPIRY_DAYS), validate_choice=False,
                             choices=[*((str(days), f"In {days} days") for days in EXPIRY_DAYS),
                                      (ON_A_DATE, "On a date")])
    expires_on = DateField("Expiry date", validators=[Optional()])


def _context(form=None) -> dict:
    return {"form": form or ApiTokenForm(formdata=None), "tokens": api_tokens.all_tokens(),
            "now": utcnow(), "row_form": EmptyForm()}


@bp.get("/settings/api-tokens")
@administrator_required
def api_tokens_page():
    return render_template(T + "index.html", **_context())


@bp.post("/settings/api-tokens")
@administrator_required
def create_api_token():
    form = ApiTokenForm()
    if form.validate_on_submit():
        on_a_date = form.expires_in.data == ON_A_DATE
        days = int(form.expires_in.data) if form.expires_in.data.isdigit() else None
        try:
            new = api_tokens.create_token(form.name.data, form.scope.data,
                                          created_by=current_user.username,
                                          days=None if on_a_date else days,
                                          on=form.expires_on.data if on_a_date else None)
        except ApiTokenError as error:
            errors = dict(error.errors)
            if on_a_date and form.expires_on.data is None and "expires_in" in errors:
                del errors["expires_in"]
                errors["expires_on"] = "Choose the date the token stops working."
            show_errors(form, errors, first_only=True)
        else:
            # Shown once: the page is not cached, and nothing keeps the token afterwards.
            response = make_response(render_template(T + "created.html", new=new))
            response.headers["Cache-Control"] = "no-store"
            return response
    return render(T + "index.html", T + "_form.html", **_context(form)), 422


@bp.get("/settings/api-tokens/<id:token_id>/revoke")
@administrator_required
def confirm_revoke_api_token(token_id):
    token = api_tokens.get(token_id) or abort(404)
    return render_template("admin/confirm.html", form=EmptyForm(), button="Revoke",
                           title=f"Revoke the API token {token.name}?",
                           message="Every request with it is refused from now on (401). "
                                   "This cannot be undone: make a new token instead.",
                           action=url_for("admin.revoke_api_token", token_id=token.id),
                           back=url_for("admin.api_tokens_page"))


@bp.post("/settings/api-tokens/<id:token_id>/revoke")
@administrator_required
def revoke_api_token(token_id):
    token = api_tokens.get(token_id) or abort(404)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        api_tokens.revoke_token(token, revoked_by=current_user.username)
    except ApiTokenError as error:
        return refused(error.message, back=url_for("admin.api_tokens_page"))
    return saved(f"The API token {token.name} is revoked.", "admin.api_tokens_page",
                 T + "_token_row.html", token=token, now=utcnow(), row_form=EmptyForm())
