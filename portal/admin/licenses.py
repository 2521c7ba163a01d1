"""Admin → Licenses: the four figures and the total, never below what is used and reserved."""
from flask_login import current_user

from portal.accounts.decorators import administrator_required
from portal.admin import bp
from portal.admin.people_forms import LicensesForm
from portal.enrollment.pending import current_figures, expire_due
from portal.licensing.seats import LicenseError, set_total
from portal.web.forms import show_errors
from portal.web.htmx import render, saved

T = "admin/people/"


@bp.route("/settings/licenses", methods=["GET", "POST"])
@administrator_required
def licenses():
    figures = current_figures()
    form = LicensesForm(data={"total": figures.total})
    if form.validate_on_submit():
        expire_due()  # the expired reservations the figures show as free are freed first
        try:
            figures = set_total(form.total.data, actor_type="admin", actor=current_user.username)
        except LicenseError as error:
            show_errors(form, {"total": error.message})
        else:
            response = saved(f"The total is {figures.total:,} licenses.", "admin.licenses",
                             T + "_licenses.html", form=form, figures=figures)
            response.headers["HX-Trigger"] = "licenses-changed"
            return response
    status = 422 if form.is_submitted() else 200
    return render(T + "licenses.html", T + "_licenses.html", form=form,
                  figures=current_figures()), status
