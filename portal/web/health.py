"""GET /healthz: 200 when the database answers, 503 otherwise."""
import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify

from portal.database import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(sa.text("SELECT 1"))
        db.session.rollback()
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        current_app.logger.warning("health check: the database does not answer")
        return jsonify(status="unavailable"), 503
    return jsonify(status="ok")
