"""Admin → Self Service Portal: the OTP defaults (length, characters, validity)."""
from flask_login import current_user

from portal.accounts.decorators import administrator_required
from portal.admin import bp
from portal.admin.settings_forms import OtpPolicyForm
from portal.settings import otp_policy
from portal.settings.otp_policy import OtpPolicyError
from portal.web.forms import show_errors
from portal.web.htmx import render, saved

T = "admin/settings/"


def _context(form, policy):
    return {"form": form, "policy": policy, "example": otp_policy.example_otp(policy)}


@bp.route("/settings/self-service-portal", methods=["GET", "POST"])
@administrator_required
def ssp_settings():
    policy = otp_policy.current()
    form = OtpPolicyForm(data={"length": policy.length, "alphabet": policy.alphabet,
                               "validity_hours": policy.validity_hours,
                               "unlimited": policy.validity_hours is None})
    if form.validate_on_submit():
        validity = None if form.unlimited.data else form.validity_hours.data
        try:
            policy = otp_policy.save_otp_policy(form.length.data, form.alphabet.data, validity,
                                                actor=current_user.username)
        except OtpPolicyError as error:
            show_errors(form, error.errors)
        else:
            return saved("The OTP defaults are saved.", "admin.ssp_settings",
                         T + "_otp_policy_form.html", **_context(form, policy))
    status = 422 if form.is_submitted() else 200
    return render(T + "self_service_portal.html", T + "_otp_policy_form.html",
                  **_context(form, policy)), status
