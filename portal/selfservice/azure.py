"""Azure AD (Entra ID) sign-in for the Self Service Portal: msal's authorization-code flow.

The flow (state, nonce, PKCE verifier) waits in the portal's own session cookie; the provider
returns with a top-level GET (response_mode=query), so a SameSite=Lax cookie comes along and
no third-party cookie is needed.
"""
from flask import redirect, render_template, request, session, url_for

from portal.accounts.directory import SignInRefused, refuse_azure, sign_in_azure_user
from portal.database import end_transaction
from portal.directory.azure import AzureError, AzureRejected, begin_sign_in, finish_sign_in
from portal.extensions import client_address
from portal.selfservice import bp
from portal.selfservice.sign_in import (load_qr_code, refusal_message, start_session,
                                        signed_in_user)
from portal.settings import sign_in as sign_in_settings
from portal.vocabulary import UserSource
from portal.web.urls import azure_callback_url


def _failed(qr_code, code: str, status: int):
    return render_template("selfservice/azure_failed.html", qr_code=qr_code,
                           message=refusal_message(code)), status


@bp.get("/azure/start")
def azure_start():
    qr_code = load_qr_code(request.args.get("qr_id"))
    if signed_in_user(qr_code) is not None:
        return redirect(url_for("selfservice.start", qr_id=qr_code.public_id))
    methods = sign_in_settings.current()
    if UserSource.AZURE not in methods.enabled:
        return redirect(url_for("selfservice.index", qr_id=qr_code.public_id))
    end_transaction()  # only read so far: the provider answers outside a transaction
    try:
        auth_uri, flow = begin_sign_in(methods.azure, azure_callback_url())
    except AzureError as error:
        refuse_azure("directory_unavailable", error.cause, client_address=client_address())
        return _failed(qr_code, "directory_unavailable", 503)
    session["azure_flow"], session["azure_qr_id"] = flow, qr_code.public_id
    return redirect(auth_uri, 303)


@bp.get("/azure/callback")
def azure_callback():
    flow, qr_id = session.pop("azure_flow", None), session.pop("azure_qr_id", None)
    if qr_id is None:
        return render_template("selfservice/azure_failed.html", qr_code=None,
                               message=refusal_message("expired")), 400
    qr_code = load_qr_code(qr_id)
    methods = sign_in_settings.current()
    if UserSource.AZURE not in methods.enabled or flow is None:
        return _failed(qr_code, "expired", 400)
    params = request.args.to_dict()
    address = client_address()
    if params.get("error") == "access_denied":
        refuse_azure("cancelled", f"the provider answered access_denied: "
                     f"{params.get('error_description', '')[:200]}", client_address=address)
        return _failed(qr_code, "cancelled", 400)
    end_transaction()
    try:
        identity = finish_sign_in(methods.azure, flow, params)
        user = sign_in_azure_user(identity, client_address=address)
    except AzureRejected as error:
        refuse_azure("invalid_credentials", error.cause, client_address=address)
        return _failed(qr_code, "invalid_credentials", 400)
    except AzureError as error:
        refuse_azure("directory_unavailable", error.cause, client_address=address)
        return _failed(qr_code, "directory_unavailable", 503)
    except SignInRefused as refusal:
        return _failed(qr_code, refusal.code, 403)
    start_session(user, qr_code)
    return redirect(url_for("selfservice.start", qr_id=qr_code.public_id), 303)
