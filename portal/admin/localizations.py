"""Admin → Localizations: the languages the wizard offers, built in and custom."""
from flask import abort, render_template, url_for
from flask_login import current_user

from portal.accounts.decorators import administrator_required
from portal.admin import bp
from portal.admin.forms import EmptyForm
from portal.admin.settings_forms import LocalizationForm
from portal.settings import localizations as localization_list
from portal.settings.localizations import LocalizationError
from portal.web.forms import show_errors
from portal.web.htmx import refused, render, saved

T = "admin/settings/"


def _context(form=None):
    return {"form": form or LocalizationForm(formdata=None),
            "localizations": localization_list.all_localizations()}


@bp.get("/settings/localizations")
@administrator_required
def localizations():
    return render(T + "localizations.html", T + "_localization_table.html", **_context())


@bp.post("/settings/localizations")
@administrator_required
def add_localization():
    form = LocalizationForm()
    if form.validate_on_submit():
        try:
            added = localization_list.add_localization(form.tag.data, form.name.data,
                                                       actor=current_user.username)
        except LocalizationError as error:
            show_errors(form, error.errors)
        else:
            return saved(f"The localization {added.tag} ({added.name}) is added.",
                         "admin.localizations", T + "_localization_added.html", **_context())
    return render(T + "localizations.html", T + "_localization_form.html",
                  **_context(form)), 422


@bp.get("/settings/localizations/<tag>/delete")
@administrator_required
def confirm_delete_localization(tag):
    localization = localization_list.find(tag)
    if localization is None or localization.builtin:
        abort(404)
    return render_template("admin/confirm.html", form=EmptyForm(),
                           title=f"Delete the localization {localization.tag}?",
                           message=f"{localization.name} ({localization.tag}) will no longer be "
                                   "offered in the wizard. QR codes already created with it "
                                   "keep it.",
                           action=url_for("admin.delete_localization", tag=localization.tag),
                           back=url_for("admin.localizations"))


@bp.post("/settings/localizations/<tag>/delete")
@administrator_required
def delete_localization(tag):
    try:
        localization_list.delete_localization(tag, actor=current_user.username)
    except LocalizationError as error:
        return refused(error.message, T + "localizations.html", **_context())
    # htmx: the empty answer replaces the row, which removes it.
    return saved(f"The localization {tag} is deleted.", "admin.localizations")
