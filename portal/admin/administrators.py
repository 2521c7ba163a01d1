"""Admin → Administrators: add admins, their role and Mail recipient flag, disable, set a new
password, unlock. No admin disables or demotes themselves; one active Administrator remains."""
from flask import abort, flash, render_template, request, url_for
from flask_login import current_user

from portal.accounts import admins as accounts
from portal.accounts import lockout, two_step
from portal.accounts.decorators import administrator_required
from portal.accounts.errors import AccountError
from portal.audit.history import recent_changes
from portal.accounts.models import AdminUser
from portal.admin import bp
from portal.admin.forms import EmptyForm
from portal.admin.people_forms import AddAdministratorForm, EditAdministratorForm, PasswordForm
from portal.database import db
from portal.extensions import client_address
from portal.web.forms import show_errors
from portal.web.htmx import go, refused, render, saved

T = "admin/people/"


def _locked(admins) -> set[int]:
    return {admin.id for admin in admins if lockout.is_locked_out(lockout.ADMIN, admin.username)}


@bp.get("/people/administrators")
@administrator_required
def administrators():
    admins = accounts.list_admins()
    return render_template(T + "administrators.html", admins=admins, locked=_locked(admins),
                           form=EmptyForm())


@bp.route("/people/administrators/new", methods=["GET", "POST"])
@administrator_required
def add_administrator():
    form = AddAdministratorForm()
    if form.validate_on_submit():
        try:
            admin = accounts.create_admin(
                form.username.data, form.email.data, form.password.data,
                mail_recipient=form.mail_recipient.data, role=form.role.data,
                created_by=current_user.username, actor_type="admin")
        except AccountError as error:
            show_errors(form, error.errors, first_only=True)
        else:
            flash(f"The admin {admin.username} is added.", "info")
            return go(url_for("admin.administrators"))
    status = 422 if form.is_submitted() else 200
    return render(T + "add_administrator.html", T + "_add_administrator_form.html",
                  form=form), status


def _admin(admin_id: int) -> AdminUser:
    return db.get_or_404(AdminUser, admin_id)


def _admin_context(admin: AdminUser, form=None, password_form=None) -> dict:
    return {"admin": admin, "form": form or EditAdministratorForm(obj=admin),
            "password_form": password_form or PasswordForm(formdata=None),
            "locked": lockout.is_locked_out(lockout.ADMIN, admin.username),
            "history": recent_changes(admin.username, "admin"), "name": admin.username,
            "myself": admin.id == current_user.id}


@bp.route("/people/administrators/<id:admin_id>", methods=["GET", "POST"])
@administrator_required
def edit_administrator(admin_id):
    admin = _admin(admin_id)
    form = EditAdministratorForm(obj=admin) if request.method == "GET" else \
        EditAdministratorForm()
    if form.validate_on_submit():
        try:
            accounts.update_admin(admin.id, email=form.email.data, role=form.role.data,
                                  mail_recipient=form.mail_recipient.data, actor=current_user)
        except AccountError as error:
            db.session.rollback()
            show_errors(form, error.errors, first_only=True)
        else:
            return saved(f"The admin {admin.username} is saved.", "admin.edit_administrator",
                         T + "_edit_administrator_form.html", **_admin_context(admin, form),
                         url_values={"admin_id": admin.id})
    status = 422 if form.is_submitted() else 200
    return render(T + "administrator.html", T + "_edit_administrator_form.html",
                  **_admin_context(_admin(admin_id), form)), status


@bp.route("/people/administrators/<id:admin_id>/password", methods=["GET", "POST"])
@administrator_required
def set_administrator_password(admin_id):
    admin = _admin(admin_id)
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            accounts.set_admin_password(admin.id, form.password.data, actor=current_user)
        except AccountError as error:
            show_errors(form, error.errors, first_only=True)
        else:
            flash(f"The admin {admin.username} has a new password; their sessions have ended.",
                  "info")
            if admin.id == current_user.id:
                return go(url_for("admin.login"))
            return go(url_for("admin.edit_administrator", admin_id=admin.id))
    status = 422 if form.is_submitted() else 200
    return render(T + "administrator.html", T + "_administrator_password_form.html",
                  **_admin_context(admin, password_form=form)), status


@bp.get("/people/administrators/<id:admin_id>/disable")
@administrator_required
def confirm_disable_administrator(admin_id):
    admin = _admin(admin_id)
    return render_template("admin/confirm.html", form=EmptyForm(), button="Disable",
                           title=f"Disable the admin {admin.username}?",
                           message="They are signed out everywhere at once and can no longer "
                                   "sign in to the console until you enable them again.",
                           action=url_for("admin.disable_administrator", admin_id=admin.id),
                           back=url_for("admin.administrators"))


def _changed_row(admin_id: int, change, message: str):
    """Run a change of an admin's row; htmx gets the row back, a plain POST the list."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    admin = _admin(admin_id)
    try:
        change(admin)
    except AccountError as error:
        db.session.rollback()
        return refused(" ".join(error.errors.values()), back=url_for("admin.administrators"))
    admin = db.session.get(AdminUser, admin_id)
    return saved(message.format(name=admin.username), "admin.administrators",
                 T + "_administrator_row.html", admin=admin, locked=_locked([admin]),
                 form=EmptyForm())


@bp.post("/people/administrators/<id:admin_id>/disable")
@administrator_required
def disable_administrator(admin_id):
    return _changed_row(admin_id, lambda admin: accounts.set_admin_active(
        admin.id, False, actor=current_user), "The admin {name} is disabled and signed out.")


@bp.post("/people/administrators/<id:admin_id>/enable")
@administrator_required
def enable_administrator(admin_id):
    return _changed_row(admin_id, lambda admin: accounts.set_admin_active(
        admin.id, True, actor=current_user), "The admin {name} is enabled.")


@bp.post("/people/administrators/<id:admin_id>/unlock")
@administrator_required
def unlock_administrator(admin_id):
    return _changed_row(admin_id, lambda admin: lockout.unlock(
        lockout.ADMIN, admin.username, kind="admin", actor=current_user.username),
        "The admin {name} can sign in again: the failed sign-ins are forgotten.")


@bp.get("/people/administrators/<id:admin_id>/two-step/reset")
@administrator_required
def confirm_reset_two_step(admin_id):
    admin = _admin(admin_id)
    return render_template("admin/confirm.html", form=EmptyForm(), button="Turn off two-step sign-in",
                           title=f"Turn off two-step sign-in for {admin.username}?",
                           message="For an admin who lost both the phone and the recovery codes: "
                                   "they sign in with their password alone until they turn it "
                                   "on again (at once, when it is required for every admin).",
                           action=url_for("admin.reset_two_step", admin_id=admin.id),
                           back=url_for("admin.edit_administrator", admin_id=admin.id))


@bp.post("/people/administrators/<id:admin_id>/two-step/reset")
@administrator_required
def reset_two_step(admin_id):
    admin = _admin(admin_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    if admin.totp_enabled_at is None:
        flash(f"The admin {admin.username} has no two-step sign-in to turn off.", "error")
    else:
        two_step.reset(admin, actor=current_user.username, client_address=client_address())
        flash(f"Two-step sign-in is off for {admin.username}.", "info")
    return go(url_for("admin.edit_administrator", admin_id=admin.id))
