"""Admin → Preflight: every check a QR code depends on, run on request.

The page (GET) shows the last run and writes nothing; "Run preflight" (POST) runs the checks,
keeps the run for the page and the wizard's summary, and audits it.
"""
from flask import abort
from flask_login import current_user

from portal import preflight as checks
from portal.accounts.decorators import administrator_required
from portal.admin import bp
from portal.admin.forms import EmptyForm
from portal.web.htmx import render, saved

T = "admin/preflight/"


@bp.get("/settings/preflight")
@administrator_required
def preflight():
    return render(T + "index.html", T + "_run.html", run=checks.last_run(), form=EmptyForm())


@bp.post("/settings/preflight")
@administrator_required
def run_preflight():
    if not EmptyForm().validate_on_submit():
        abort(400)
    run = checks.run_and_save(actor_type="admin", actor=current_user.username)
    return saved(_summary(run), "admin.preflight", T + "_run.html", quiet=True, run=run,
                 form=EmptyForm())


def _summary(run) -> str:
    if not (run.failures or run.warnings):
        return "Preflight: every check passed."
    return f"Preflight: {_count(run.failures, 'failure')}, {_count(run.warnings, 'warning')}."


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"


@bp.context_processor
def preflight_summary() -> dict:
    # A callable, so only the page that shows the summary (the wizard) reads the last run.
    return {"last_preflight": checks.last_run}
