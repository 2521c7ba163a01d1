"""Admin → Network profiles: named Wi-Fi or mobile-data settings the wizard offers as Saved
profile. Administrators manage them (as the other Admin settings); every admin who creates QR
codes uses them in the wizard."""
import sqlalchemy as sa
from flask import abort, render_template, request, url_for
from flask_login import current_user

from portal.accounts.decorators import administrator_required
from portal.admin import bp
from portal.admin.forms import EmptyForm, NetworkProfileForm
from portal.database import db
from portal.enrollment.models import QrCode
from portal.provisioning.wizard import WizardState
from portal.settings import network_profiles as profiles
from portal.settings.models import NetworkProfile
from portal.settings.network_profiles import NetworkProfileError
from portal.web.forms import show_errors
from portal.web.htmx import render, saved
from portal.web.pagination import paginate

T = "admin/settings/"
PAGE_SIZE = 50


def qr_code_counts(profile_ids=None) -> dict[int, int]:
    """How many QR codes were made from each profile (revoked ones too). A read."""
    query = sa.select(QrCode.network_profile_id, sa.func.count()) \
        .where(QrCode.network_profile_id.is_not(None)).group_by(QrCode.network_profile_id)
    if profile_ids is not None:
        query = query.where(QrCode.network_profile_id.in_(profile_ids))
    return dict(db.session.execute(query).all())


def _load(profile_id: int) -> NetworkProfile:
    profile = profiles.get(profile_id)
    if profile is None:
        abort(404)
    return profile


def _form_page(form: NetworkProfileForm, profile: NetworkProfile | None = None, status=200):
    return render_template(T + "network_profile.html", form=form, profile=profile,
                           state=WizardState(), describe=profiles.describe), status


@bp.get("/settings/network-profiles")
@administrator_required
def network_profiles():
    page = paginate(profiles.listing(), request.args, PAGE_SIZE)
    return render(T + "network_profiles.html", T + "_network_profile_table.html", page=page,
                  counts=qr_code_counts([profile.id for profile in page.items]),
                  describe=profiles.describe, management_label=profiles.management_label)


@bp.get("/settings/network-profiles/new")
@administrator_required
def new_network_profile():
    return _form_page(NetworkProfileForm())


@bp.post("/settings/network-profiles")
@administrator_required
def create_network_profile():
    return _save(NetworkProfileForm(), None)


@bp.get("/settings/network-profiles/<id:profile_id>")
@administrator_required
def network_profile(profile_id):
    profile = _load(profile_id)
    return _form_page(NetworkProfileForm(obj=profile, wifi_password=None), profile)


@bp.post("/settings/network-profiles/<id:profile_id>")
@administrator_required
def save_network_profile(profile_id):
    return _save(NetworkProfileForm(), _load(profile_id))


def _save(form: NetworkProfileForm, profile: NetworkProfile | None):
    """Every message at once, beside its field; the form comes back as typed but for the
    password, which is never sent back to the browser."""
    if form.validate_on_submit():
        try:
            saved_profile = profiles.save(form.to_values(), actor=current_user.username,
                                          profile=profile)
        except NetworkProfileError as error:
            show_errors(form, error.errors, first_only=True)
        else:
            verb = "saved" if profile is None else f"saved (version {saved_profile.version})"
            return saved(f"The network profile {saved_profile.name} is {verb}.",
                         "admin.network_profiles")
    elif "csrf_token" in form.errors:
        abort(400)
    else:
        show_errors(form, profiles.validate(form.to_values(), profile=profile), first_only=True)
    return _form_page(form, profile, 422)


@bp.get("/settings/network-profiles/<id:profile_id>/delete")
@administrator_required
def confirm_delete_network_profile(profile_id):
    profile = _load(profile_id)
    made = qr_code_counts([profile.id]).get(profile.id, 0)
    used = "No QR code was made from it." if not made else \
        "1 QR code was made from it: it keeps the network it was made with." if made == 1 \
        else f"{made:,} QR codes were made from it: they keep the network they were made with."
    return render_template("admin/confirm.html", form=EmptyForm(),
                           title=f"Delete the network profile {profile.name}?",
                           message=f"{profile.name} ({profiles.describe(profile)}) will no "
                                   f"longer be offered in the wizard. {used}",
                           action=url_for("admin.delete_network_profile",
                                          profile_id=profile.id),
                           back=url_for("admin.network_profiles"))


@bp.post("/settings/network-profiles/<id:profile_id>/delete")
@administrator_required
def delete_network_profile(profile_id):
    profile = _load(profile_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    name = profile.name
    profiles.delete(profile, actor=current_user.username)
    return saved(f"The network profile {name} is deleted.", "admin.network_profiles")
