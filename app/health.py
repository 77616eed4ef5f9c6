"""Service routes for people and probes: ``GET /``, a small page saying what this server
is and where to go; ``GET /healthz``, the process answers and the database does too."""

from flask import Blueprint, jsonify, make_response, render_template
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db
from .web.security import add_security_headers

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return jsonify(error="database: not reachable"), 503
    return jsonify(status="ok")


@bp.get("/")
def home():
    return add_security_headers(make_response(render_template("home.html")))
