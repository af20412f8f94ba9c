"""The embedded backend's Flask app: openEO API at the root, OData catalogue at ``/odata/v1``.

Fault injection lives here because it wraps every endpoint alike: a ``before_request`` hook
answers with the error (or the delay) a rule asks for, in the error format the path's real
counterpart uses, so clients are tested against the bodies they will meet on CDSE.
"""

from __future__ import annotations

import os
import time
from http import HTTPStatus

from flask import Flask, Response, jsonify, request

from embedded_openeo.catalogue_api import create_catalogue_blueprint, odata_error
from embedded_openeo.config import BackendConfig
from embedded_openeo.faults import DEFAULT_MALFORMED_ANSWER, FaultRule
from embedded_openeo.github_api import GITHUB_API_PREFIX, create_github_blueprint
from embedded_openeo.openeo_api import ApiError, create_openeo_blueprint
from embedded_openeo.state import BackendState

STATE_EXTENSION = "coherence_backend"
CATALOGUE_PREFIX = "/odata/v1"
FAULTS_PATH = "/_faults"
# Outside the openEO API, like /_faults: which state this backend serves, so the project never
# talks to a backend of another folder that happens to hold the port.
STATE_PATH = "/_state"
# openEO's standard codes (errors.json) where one exists; other statuses get their HTTP reason phrase.
OPENEO_ERROR_CODES = {404: "NotFound", 500: "Internal", 503: "InfrastructureBusy"}


def create_app(config: BackendConfig) -> Flask:
    """A ready app; its :class:`BackendState` is in ``app.extensions["coherence_backend"]``."""
    state = BackendState.create(config)
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep "@odata.context" and "id" first
    app.extensions[STATE_EXTENSION] = state
    if config.allow_faults:  # otherwise /_faults answers like any unknown path: 404
        _install_fault_injection(app, state)
    _install_state_endpoint(app, config)
    app.register_blueprint(create_catalogue_blueprint(state), url_prefix=CATALOGUE_PREFIX)
    app.register_blueprint(create_openeo_blueprint(state))
    app.register_blueprint(create_github_blueprint(), url_prefix=GITHUB_API_PREFIX)
    _install_error_bodies(app)
    return app


def _error_for_path(status: int, message: str) -> Response:
    """An error in the format the path's real counterpart uses: OData for the catalogue, openEO elsewhere."""
    if request.path.startswith(CATALOGUE_PREFIX + "/"):
        return odata_error(status, message)
    code = OPENEO_ERROR_CODES.get(status, HTTPStatus(status).phrase.replace(" ", ""))
    return ApiError(status, code, message).response()


def _install_error_bodies(app: Flask) -> None:
    """Unknown paths and methods answer JSON, not Flask's HTML pages: clients parse every error body."""

    @app.errorhandler(404)
    def not_found(_error: Exception) -> Response:
        return _error_for_path(404, f"Resource not found: {request.path}")

    @app.errorhandler(405)
    def method_not_allowed(_error: Exception) -> Response:
        return _error_for_path(405, f"Method {request.method} is not allowed on {request.path}")


def _install_state_endpoint(app: Flask, config: BackendConfig) -> None:
    """``GET /_state``: the absolute data folder this backend serves, and its process id."""

    @app.get(STATE_PATH)
    def served_state() -> Response:
        return jsonify({"data_dir": str(config.data_dir.resolve()), "pid": os.getpid()})


def _install_fault_injection(app: Flask, state: BackendState) -> None:
    """``POST /_faults`` (a JSON rule), ``GET /_faults`` (the rules in force), ``DELETE /_faults``,
    and the hook that applies HTTP faults."""

    @app.post(FAULTS_PATH)
    def add_fault() -> tuple[Response, int]:
        try:
            rule = FaultRule.from_json(request.get_json(force=True, silent=True))
        except ValueError as error:
            return ApiError(400, "FaultRuleInvalid", str(error)).response(), 400
        state.faults.add(rule)
        return jsonify(rule.to_json()), 201

    @app.get(FAULTS_PATH)
    def list_faults() -> Response:
        return jsonify([rule.to_json() for rule in state.faults.active()])

    @app.delete(FAULTS_PATH)
    def clear_faults() -> tuple[str, int]:
        state.faults.clear()
        return "", 204

    @app.before_request
    def apply_http_fault() -> Response | None:
        if request.path == FAULTS_PATH:
            return None
        rule = state.faults.http_fault_for(request.method, request.path)
        if rule is None:
            return None
        if rule.delay_seconds:
            time.sleep(rule.delay_seconds)
        if rule.kind == "empty_answer":
            return jsonify({"@odata.context": "$metadata#Bursts", "value": []})
        if rule.kind == "malformed_answer":
            return Response(rule.message or DEFAULT_MALFORMED_ANSWER, status=200, mimetype="text/html")
        if rule.status is None:
            return None
        message = rule.message or f"Injected fault: {HTTPStatus(rule.status).phrase}"
        response = _error_for_path(rule.status, message)
        if rule.retry_after is not None:
            response.headers["Retry-After"] = str(rule.retry_after)
        return response
