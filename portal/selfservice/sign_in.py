"""The Self Service Portal: sign in, press Start, hand the ticket to the Companion."""
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from flask import (abort, current_app, redirect, render_template, request, session, url_for)

from portal.accounts.local import authenticate_local_user
from portal.accounts.models import PortalUser
from portal.database import db
from portal.enrollment.tickets import issue_ticket
from portal.extensions import limiter
from portal.provisioning.models import QrCode
from portal.selfservice import bp
from portal.selfservice.forms import LocalSignInForm, StartForm
from portal.settings.companion import enrollment_link_scheme
from portal.web.addresses import client_address


def _qr_code() -> QrCode:
    """The Self Service Portal QR named by ?qr_id: 404 when unknown, 403 when revoked."""
    qr_id = request.args.get("qr_id", "")[:32]
    qr_code = db.session.scalar(sa.select(QrCode).where(QrCode.public_id == qr_id,
                                                        QrCode.option == "ssp"))
    if qr_code is None:
        abort(404)
    if qr_code.is_revoked:
        abort(403)
    return qr_code


def _signed_in_user(qr_code: QrCode) -> PortalUser | None:
    if session.get("ssp_qr_id") != qr_code.public_id or "ssp_user_id" not in session:
        return None
    return db.session.get(PortalUser, session["ssp_user_id"])


@bp.get("/")
def index():
    qr_code = _qr_code()
    if _signed_in_user(qr_code) is not None:
        return redirect(url_for("selfservice.start", qr_id=qr_code.public_id))
    return render_template("selfservice/sign_in.html", qr_code=qr_code, form=LocalSignInForm())


def _failed(response) -> bool:
    return response.status_code != 303


def _username_key() -> str:
    return "ssp-login:" + request.form.get("username", "").strip().lower()[:64]


@bp.post("/sign-in")
@limiter.limit(lambda: current_app.config["ADMIN_LOGIN_LIMIT"], key_func=_username_key,
               deduct_when=_failed)
@limiter.limit(lambda: current_app.config["ADMIN_LOGIN_IP_LIMIT"], deduct_when=_failed)
def sign_in():
    qr_code = _qr_code()
    form = LocalSignInForm()
    if not form.validate_on_submit():
        return render_template("selfservice/sign_in.html", qr_code=qr_code, form=form), 422
    user = authenticate_local_user(form.username.data, form.password.data,
                                   client_address=client_address())
    if user is None:
        form.password.errors.append("The user name or the password is wrong.")
        return render_template("selfservice/sign_in.html", qr_code=qr_code, form=form), 422
    session.clear()
    session.update(ssp_user_id=user.id, ssp_qr_id=qr_code.public_id)
    return redirect(url_for("selfservice.start", qr_id=qr_code.public_id), 303)


@bp.route("/start", methods=["GET", "POST"])
def start():
    qr_code = _qr_code()
    user = _signed_in_user(qr_code)
    if user is None:
        return redirect(url_for("selfservice.index", qr_id=qr_code.public_id))
    form = StartForm()
    if not form.validate_on_submit():
        return render_template("selfservice/start.html", qr_code=qr_code, user=user, form=form)
    ticket = issue_ticket(qr_code, user)
    server_url = current_app.config["PORTAL_PUBLIC_URL"]
    link = f"{enrollment_link_scheme()}://enroll?" + urlencode(
        {"server_url": server_url, "qr_id": qr_code.public_id, "ticket": ticket},
        quote_via=quote)
    return render_template("selfservice/enroll.html", qr_code=qr_code, user=user, link=link)
