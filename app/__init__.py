"""Waitpoint: self-hosted human-in-the-loop approval tokens."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from . import config as config_module
from .extensions import csrf, db, htmx
from .infra.database import WriterTimeout, configure_engine

MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")


def create_app(test_config: dict | None = None, *, environ: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="../static",
    )
    _load_config(app, test_config, environ)
    app.json.sort_keys = False  # keep the documented field order on the wire (docs/api.md)
    _check_urls(app)
    _init_extensions(app)
    _register_templating(app)
    _register_blueprints(app)
    _register_error_handlers(app)
    _register_commands(app)
    _init_waiting(app)
    _init_observability(app)
    _init_rate_limits(app)
    _wrap_wsgi(app)
    return app


def _wrap_wsgi(app: Flask) -> None:
    """Middleware around the app: strict request bodies, then the client behind proxies."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    from .web.request_body import StrictRequestBody

    app.wsgi_app = StrictRequestBody(app.wsgi_app, app.config["MAX_CONTENT_LENGTH"])
    proxies = app.config["WAITPOINT_TRUSTED_PROXIES"]
    if proxies:
        # The client's address, scheme, host and prefix as the nearest trusted proxies
        # saw them (X-Forwarded-*); anything a client sends beyond them is ignored.
        app.wsgi_app = ProxyFix(
            app.wsgi_app,
            x_for=proxies,
            x_proto=proxies,
            x_host=proxies,
            x_port=proxies,
            x_prefix=proxies,
        )


def _load_config(app: Flask, test_config: dict | None, environ: dict | None) -> None:
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(config_module.from_environment(Path(app.instance_path), environ))
    app.config.from_pyfile("config.py", silent=True)
    if test_config:
        app.config.from_mapping(test_config)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # Approval pages send no Referer (the URL is a secret), so Flask-WTF's HTTPS
    # referrer check would refuse every decision; the CSRF token and the SameSite
    # session cookie carry the protection.
    app.config["WTF_CSRF_SSL_STRICT"] = False
    # An approver may keep the page open for a while before deciding.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 24 * 3600)
    # The largest body any route accepts; routes lower it per request.
    app.config["MAX_CONTENT_LENGTH"] = max(
        app.config["WAITPOINT_CREATE_MAX_BYTES"], app.config["WAITPOINT_COMPLETE_MAX_BYTES"]
    )


def _check_urls(app: Flask) -> None:
    from .web import url_checks

    url_checks.register(app)  # ids in range, no NUL: before any other request hook


def _init_extensions(app: Flask) -> None:
    db.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    with app.app_context():
        configure_engine(db.engine, app.config["WAITPOINT_SQLITE_BUSY_TIMEOUT"])


def _register_templating(app: Flask) -> None:
    from .web.templating import register

    register(app)


def _register_blueprints(app: Flask) -> None:
    from .api import auth
    from .api import bp as api_bp
    from .approvals import bp as approvals_bp
    from .dashboard import bp as dashboard_bp
    from .health import bp as health_bp

    csrf.exempt(api_bp)  # API keys, no cookies: CSRF cannot apply
    auth.init_app(app)  # the cache of valid API keys
    app.register_blueprint(api_bp)
    app.register_blueprint(approvals_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(health_bp)


def _register_error_handlers(app: Flask) -> None:
    from .api.errors import ApiError, error_response, http_error_as_json, log_unexpected, wants_json
    from .web.security import add_security_headers

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.message)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        body = render_template("errors/csrf.html", reason=exc.description)
        return add_security_headers(make_response(body, 400))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if wants_json(request):
            return http_error_as_json(exc)
        if exc.code == 404:
            return add_security_headers(
                make_response(render_template("errors/not_found.html"), 404)
            )
        response = _error_page(exc.code or 500, exc.name, exc.description or "")
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(WriterTimeout)
    def _database_busy(exc: WriterTimeout):
        app.logger.warning("%s", exc)
        if wants_json(request):
            response = error_response(503, "database: busy, try again shortly")
        else:
            response = _error_page(503, "Busy", "The service is busy; try again shortly.")
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return _http_error(exc)
        response = log_unexpected(exc)
        if wants_json(request):
            return response
        return _error_page(
            500,
            "Something went wrong",
            "The service could not handle this request. Nothing was recorded; please try again.",
        )


def _error_page(status: int, title: str, message: str):
    from .web.security import add_security_headers

    body = render_template("errors/error.html", title=title, message=message)
    return add_security_headers(make_response(body, status))


def _init_observability(app: Flask) -> None:
    from .infra import metrics, requestlog

    metrics.init_app(app)  # GET /metrics, unless WAITPOINT_METRICS=off
    requestlog.init_app(app)  # request ids, request metrics, JSON lines


def _init_rate_limits(app: Flask) -> None:
    from .web import ratelimit

    ratelimit.init_app(app)  # per API key and per client address, unless WAITPOINT_RATE_LIMITS=off


def _init_waiting(app: Flask) -> None:
    from .infra.waiting import WaitHub

    app.extensions["waitpoint_waits"] = WaitHub(app, app.config["WAITPOINT_MAX_WAITERS"])


def _register_commands(app: Flask) -> None:
    from .cli import register

    register(app)
