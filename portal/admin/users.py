"""Admin → Users: local end users (add, edit, password, disable, unlock) and, read-only, the
users the directories sent (Active Directory, Azure AD)."""
from flask import abort, flash, render_template, request, url_for
from flask_login import current_user

from portal.accounts import lockout
from portal.accounts import users as accounts
from portal.accounts.decorators import administrator_required
from portal.accounts.errors import AccountError
from portal.audit.history import recent_changes
from portal.accounts.models import PortalUser
from portal.admin import bp
from portal.admin.forms import EmptyForm
from portal.admin.people_forms import AddUserForm, EditUserForm, PasswordForm, UserSearchForm
from portal.database import db
from portal.vocabulary import UserSource
from portal.web.forms import show_errors
from portal.web.htmx import go, refused, render, saved
from portal.web.pagination import keyset

T = "admin/people/"
PAGE_SIZE = 25


def _list_context() -> dict:
    search = UserSearchForm(formdata=request.args)
    valid = search.validate()
    query = search.q.data if valid else ""
    source = search.source.data if search.source.data in tuple(UserSource) else None
    page = keyset(accounts.users_statement(query, source), accounts.USER_ORDER, request.args,
                  PAGE_SIZE, descending=False, total=None if query else
                  accounts.count_users(source))
    return {"search": search, "page": page, "query": query, "source": source,
            "locked": _locked(page.items), "form": EmptyForm()}


# The sources whose users sign in with a password on the Self Service Portal's form, and so
# can be locked out by its throttling (Azure AD users sign in at Microsoft).
PASSWORD_SOURCES = (UserSource.LOCAL, UserSource.LDAP)


def _locked(users) -> set[int]:
    return {user.id for user in users if user.source in PASSWORD_SOURCES
            and lockout.is_locked_out(lockout.USER, user.username)}


@bp.get("/people/users")
@administrator_required
def users():
    return render(T + "users.html", T + "_users_table.html", **_list_context())


@bp.route("/people/users/new", methods=["GET", "POST"])
@administrator_required
def add_user():
    form = AddUserForm()
    if form.validate_on_submit():
        try:
            user = accounts.add_local_user(
                form.username.data, form.email.data, form.password.data,
                display_name=form.display_name.data, actor_type="admin",
                actor=current_user.username)
        except AccountError as error:
            show_errors(form, error.errors, first_only=True)
        else:
            flash(f"The user {user.username} is added; they can sign in to the Self Service "
                  "Portal.", "info")
            return go(url_for("admin.users", q=user.username))
    status = 422 if form.is_submitted() else 200
    return render(T + "add_user.html", T + "_add_user_form.html", form=form), status


def _user(user_id: int) -> PortalUser:
    user = db.get_or_404(PortalUser, user_id)
    if user.source != UserSource.LOCAL:
        abort(404)  # directory users are changed in their directory
    return user


def _user_context(user: PortalUser, form=None, password_form=None) -> dict:
    return {"user": user, "form": form or EditUserForm(obj=user),
            "password_form": password_form or PasswordForm(formdata=None),
            "locked": lockout.is_locked_out(lockout.USER, user.username),
            "history": recent_changes(user.username, "user"), "name": user.username,
            "action_form": EmptyForm()}


@bp.route("/people/users/<id:user_id>", methods=["GET", "POST"])
@administrator_required
def edit_user(user_id):
    user = _user(user_id)
    form = EditUserForm(obj=user) if request.method == "GET" else EditUserForm()
    if form.validate_on_submit():
        try:
            accounts.update_local_user(user.id, display_name=form.display_name.data,
                                       email=form.email.data, actor=current_user.username)
        except AccountError as error:
            db.session.rollback()
            show_errors(form, error.errors, first_only=True)
        else:
            return saved(f"The user {user.username} is saved.", "admin.edit_user",
                         T + "_edit_user_form.html", **_user_context(user, form),
                         url_values={"user_id": user.id})
    status = 422 if form.is_submitted() else 200
    return render(T + "user.html", T + "_edit_user_form.html",
                  **_user_context(db.session.get(PortalUser, user_id), form)), status


@bp.route("/people/users/<id:user_id>/password", methods=["GET", "POST"])
@administrator_required
def set_user_password(user_id):
    user = _user(user_id)
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            accounts.set_user_password(user.id, form.password.data, actor=current_user.username)
        except AccountError as error:
            show_errors(form, error.errors, first_only=True)
        else:
            return saved(f"The user {user.username} has a new password.", "admin.edit_user",
                         T + "_user_password_form.html",
                         **_user_context(user, password_form=PasswordForm(formdata=None)),
                         url_values={"user_id": user.id})
    status = 422 if form.is_submitted() else 200
    return render(T + "user.html", T + "_user_password_form.html",
                  **_user_context(user, password_form=form)), status


@bp.get("/people/users/<id:user_id>/disable")
@administrator_required
def confirm_disable_user(user_id):
    user = _user(user_id)
    return render_template("admin/confirm.html", form=EmptyForm(), button="Disable",
                           title=f"Disable the user {user.username}?",
                           message=DISABLE_USER_MESSAGE,
                           action=url_for("admin.disable_user", user_id=user.id),
                           back=url_for("admin.users", q=user.username))


DISABLE_USER_MESSAGE = ("They can no longer sign in to the Self Service Portal or be chosen "
                        "for a QR code, and devices cannot enroll with their Automatic "
                        "Provisioning QR codes until you enable them again. Devices already "
                        "enrolled stay enrolled.")


def _changed_row(user_id: int, change, message: str, sources=(UserSource.LOCAL,)):
    """Run a change of a user's row; htmx gets the row back, a plain POST the list."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    user = db.get_or_404(PortalUser, user_id)
    if user.source not in sources:
        abort(404)
    try:
        change(user)
    except AccountError as error:
        db.session.rollback()
        return refused(" ".join(error.errors.values()), back=url_for("admin.users"))
    user = db.session.get(PortalUser, user_id)
    return saved(message.format(name=user.username), "admin.users", T + "_user_row.html",
                 user=user, locked=_locked([user]), form=EmptyForm(),
                 url_values={"q": user.username})


@bp.post("/people/users/<id:user_id>/disable")
@administrator_required
def disable_user(user_id):
    return _changed_row(user_id, lambda user: accounts.set_user_active(
        user.id, False, actor=current_user.username), "The user {name} is disabled.")


@bp.post("/people/users/<id:user_id>/enable")
@administrator_required
def enable_user(user_id):
    return _changed_row(user_id, lambda user: accounts.set_user_active(
        user.id, True, actor=current_user.username), "The user {name} is enabled.")


@bp.post("/people/users/<id:user_id>/unlock")
@administrator_required
def unlock_user(user_id):
    return _changed_row(user_id, lambda user: lockout.unlock(
        lockout.USER, user.username, kind="user", actor=current_user.username),
        "The user {name} can sign in again: the failed sign-ins are forgotten.",
        sources=PASSWORD_SOURCES)
