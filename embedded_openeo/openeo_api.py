"""The openEO API 1.2 subset that the ``openeo`` client's batch-job flow uses, served like CDSE serves it.

Authentication: HTTP Basic at ``/credentials/basic`` (bearer ``basic//<token>``) and an OIDC
client-credentials provider ``local`` whose issuer lives under ``/oidc`` (bearer
``oidc/local/<token>``). Both identify the configured user, so jobs created either way are listed
together. Tokens are signed (itsdangerous) with a secret kept in the job store, so they survive a restart.

Result files are served at signed, expiring URLs that need no ``Authorization`` header, like CDSE's
pre-signed object-store links; ``HEAD`` and single ``Range`` requests are answered (``flask.send_file``)
so the client's ranged download works.
"""

from __future__ import annotations

import base64
import hmac
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, request, send_file, url_for
from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.exceptions import HTTPException, RequestedRangeNotSatisfiable

from embedded_openeo.job_runner import JobRunner
from embedded_openeo.job_store import (
    ACTIVE_STATUSES,
    FINISHED,
    LOG_LEVELS,
    RUNNING,
    TERMINAL_STATUSES,
    JobStore,
    StoredJob,
)
from embedded_openeo.processes import (
    InvalidProcessError,
    parse_job_process,
    predefined_processes,
)
from embedded_openeo.results import (
    GEOTIFF_MEDIA_TYPE,
    ResultItem,
    ResultLinks,
    UrlSigner,
    decode_user,
    stac_collection,
    stac_item,
)

logger = logging.getLogger(__name__)

API_VERSION = "1.2.0"
STAC_VERSION = "1.0.0"
OIDC_PROVIDER_ID = "local"
OIDC_TOKEN_SECONDS = 3600
# What GET / lists: the openEO endpoints served here (signed result URLs and the OIDC issuer are not
# openEO endpoints, so they are not listed, as on CDSE).
ENDPOINTS: list[dict[str, Any]] = [
    {"path": "/credentials/basic", "methods": ["GET"]},
    {"path": "/credentials/oidc", "methods": ["GET"]},
    {"path": "/file_formats", "methods": ["GET"]},
    {"path": "/processes", "methods": ["GET"]},
    {"path": "/me", "methods": ["GET"]},
    {"path": "/jobs", "methods": ["GET", "POST"]},
    {"path": "/jobs/{job_id}", "methods": ["GET", "PATCH", "DELETE"]},
    {"path": "/jobs/{job_id}/results", "methods": ["GET", "POST", "DELETE"]},
    {"path": "/jobs/{job_id}/logs", "methods": ["GET"]},
]
_PATCHABLE = ("title", "description", "process", "log_level", "plan", "budget")


class ApiError(Exception):
    """An openEO error response: HTTP status, standard (or CDSE-like) code and a message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self) -> Response:
        body = {"id": str(uuid.uuid4()), "code": self.code, "message": self.message, "links": []}
        response = jsonify(body)
        response.status_code = self.status
        response.headers.update(self.headers)
        return response


def _job_not_found(job_id: str) -> ApiError:
    return ApiError(404, "JobNotFound", f"The batch job '{job_id}' does not exist.")


class TokenAuthority:
    """Issues and checks the bearer tokens of both login methods (``kind`` is ``basic`` or ``oidc``).

    A token is the user and its time of issue, signed by itsdangerous with the kind as salt (a basic
    token is no OIDC token); it expires ``lifetimes[kind]`` seconds after issue (``None``: never).
    """

    def __init__(self, secret: str, lifetimes: dict[str, int | None]) -> None:
        self._serializers = {kind: URLSafeTimedSerializer(secret, salt=f"{kind}-token") for kind in lifetimes}
        self._lifetimes = lifetimes

    def issue(self, kind: str, user_id: str) -> str:
        return self._serializers[kind].dumps(user_id)

    def user_of(self, kind: str, token: str) -> str | None:
        """The user a valid, unexpired token of ``kind`` belongs to, else None."""
        try:
            return self._serializers[kind].loads(token, max_age=self._lifetimes[kind])
        except BadData:  # a bad signature, an expired token, or no token at all
            return None


class StartRateLimiter:
    """Refuses job starts that come faster than one per ``min_seconds`` per user, as CDSE's gateway does."""

    def __init__(self, min_seconds: float) -> None:
        self._min_seconds = min_seconds
        self._last_start: dict[str, float] = {}
        self._lock = threading.Lock()

    def admit(self, user_id: str) -> None:
        if self._min_seconds <= 0:
            return
        with self._lock:
            now = time.monotonic()
            wait = self._last_start.get(user_id, -math.inf) + self._min_seconds - now
            if wait > 0:
                raise ApiError(
                    429,
                    "TooManyRequests",
                    f"Too many job starts: at most one every {self._min_seconds:g} s. Retry in {wait:.1f} s.",
                    headers={"Retry-After": str(math.ceil(wait))},
                )
            self._last_start[user_id] = now


class OpenEOApi:
    """The HTTP face of the backend: turns requests into store reads and runner actions."""

    def __init__(self, state: Any, store: JobStore, runner: JobRunner) -> None:
        self._state = state
        self._config = state.config
        self._store = store
        self._runner = runner
        self._tokens = TokenAuthority(store.secret("token-key"), {"basic": None, "oidc": OIDC_TOKEN_SECONDS})
        self._signer = UrlSigner(store.secret("url-signing-key"))
        self._rate_limiter = StartRateLimiter(self._config.min_seconds_between_starts)
        self.blueprint = self._build_blueprint()

    def _build_blueprint(self) -> Blueprint:
        blueprint = Blueprint("openeo", __name__)
        routes: list[tuple[str, str, Callable[..., Any], list[str]]] = [
            ("/", "capabilities", self.capabilities, ["GET"]),
            ("/.well-known/openeo", "well_known", self.well_known, ["GET"]),
            ("/credentials/basic", "credentials_basic", self.credentials_basic, ["GET"]),
            ("/credentials/oidc", "credentials_oidc", self.credentials_oidc, ["GET"]),
            ("/oidc/.well-known/openid-configuration", "oidc_discovery", self.oidc_discovery, ["GET"]),
            ("/oidc/token", "oidc_token", self.oidc_token, ["POST"]),
            ("/file_formats", "file_formats", self.file_formats, ["GET"]),
            ("/processes", "processes", self.processes, ["GET"]),
            ("/me", "me", self.me, ["GET"]),
            ("/jobs", "list_jobs", self.list_jobs, ["GET"]),
            ("/jobs", "create_job", self.create_job, ["POST"]),
            ("/jobs/<job_id>", "describe_job", self.describe_job, ["GET"]),
            ("/jobs/<job_id>", "update_job", self.update_job, ["PATCH"]),
            ("/jobs/<job_id>", "delete_job", self.delete_job, ["DELETE"]),
            ("/jobs/<job_id>/results", "list_results", self.list_results, ["GET"]),
            ("/jobs/<job_id>/results", "start_job", self.start_job, ["POST"]),
            ("/jobs/<job_id>/results", "stop_job", self.stop_job, ["DELETE"]),
            ("/jobs/<job_id>/logs", "job_logs", self.job_logs, ["GET"]),
            (
                "/jobs/<job_id>/results/collection/<user>/<signature>",
                "signed_collection",
                self.signed_collection,
                ["GET"],
            ),
            (
                "/jobs/<job_id>/results/items/<user>/<signature>/<item_id>",
                "signed_item",
                self.signed_item,
                ["GET"],
            ),
            (
                "/jobs/<job_id>/results/assets/<user>/<signature>/<file_name>",
                "signed_asset",
                self.signed_asset,
                ["GET"],
            ),
        ]
        for rule, endpoint, view, methods in routes:
            blueprint.add_url_rule(rule, endpoint, view, methods=methods)
        blueprint.register_error_handler(ApiError, lambda error: error.response())
        blueprint.register_error_handler(Exception, self._internal_error)
        return blueprint

    @staticmethod
    def _internal_error(error: Exception) -> Response | HTTPException:
        if isinstance(error, HTTPException):
            return error
        logger.exception("openEO API: unexpected error on %s %s", request.method, request.path)
        return ApiError(500, "Internal", f"Server error: {error!r}").response()

    # --- helpers ------------------------------------------------------------------------------------

    @staticmethod
    def _root() -> str:
        return url_for("openeo.capabilities", _external=True).rstrip("/")

    def _user(self) -> str:
        header = request.headers.get("Authorization", "")
        if not header:
            raise ApiError(401, "AuthenticationRequired", "Unauthorized. Authenticate via /credentials.")
        scheme, _, bearer = header.partition(" ")
        if scheme.lower() != "bearer":
            raise ApiError(403, "AuthenticationSchemeInvalid", "Authentication method not supported.")
        method, _, rest = bearer.partition("/")
        if method == "basic" and rest.startswith("/"):
            user = self._tokens.user_of("basic", rest[1:])
        elif method == "oidc" and rest.startswith(f"{OIDC_PROVIDER_ID}/"):
            user = self._tokens.user_of("oidc", rest[len(OIDC_PROVIDER_ID) + 1 :])
        else:
            raise ApiError(403, "AuthenticationSchemeInvalid", "Authentication method not supported.")
        if user is None:
            raise ApiError(
                403,
                "TokenInvalid",
                "Authorization token has expired or is invalid. Please authenticate again.",
            )
        return user

    def _job(self, job_id: str, user_id: str) -> StoredJob:
        job = self._store.get_job(job_id, user_id)
        if job is None:
            raise _job_not_found(job_id)
        return job

    @staticmethod
    def _json_body() -> dict[str, Any]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "ContentTypeInvalid", "The request body must be a JSON object.")
        return body

    @staticmethod
    def _empty(status: int, headers: dict[str, str] | None = None) -> Response:
        return Response(status=status, headers=headers)

    # --- discovery ----------------------------------------------------------------------------------

    def capabilities(self) -> Response:
        root = self._root()
        return jsonify(
            {
                "api_version": API_VERSION,
                "backend_version": metadata.version("coherence-assets"),
                "stac_version": STAC_VERSION,
                "type": "Catalog",
                "id": "coherence-assets-embedded",
                "title": "coherence-assets embedded openEO backend",
                "description": "A local stand-in for CDSE's openEO backend: Sentinel-1 coherence of "
                "synthetic bursts, with CDSE's job states, limits, errors and result layout.",
                "production": False,
                "endpoints": ENDPOINTS,
                "billing": {
                    "currency": "credits",
                    "default_plan": "free",
                    "plans": [{"name": "free", "description": "Local processing, no charge.", "paid": False}],
                },
                "links": [
                    {
                        "rel": "version-history",
                        "href": f"{root}/.well-known/openeo",
                        "type": "application/json",
                    },
                ],
            }
        )

    def well_known(self) -> Response:
        return jsonify({"versions": [{"url": self._root(), "api_version": API_VERSION, "production": False}]})

    def file_formats(self) -> Response:
        gtiff = {
            "title": "GeoTiff",
            "description": "One float32 GeoTIFF per pair, NaN no-data, deflate-compressed and tiled.",
            "gis_data_types": ["raster"],
            "parameters": {},
        }
        return jsonify({"input": {}, "output": {"GTiff": gtiff}})

    def processes(self) -> Response:
        return jsonify(
            {"processes": predefined_processes(self._config.offers_retired_processes), "links": []}
        )

    # --- authentication -----------------------------------------------------------------------------

    def credentials_basic(self) -> Response:
        credentials = request.authorization
        if credentials is None or credentials.type != "basic":
            raise ApiError(401, "AuthenticationRequired", "Send HTTP Basic credentials.")
        expected = (self._config.username, self._config.password)
        if not (
            hmac.compare_digest(credentials.username or "", expected[0])
            and hmac.compare_digest(credentials.password or "", expected[1])
        ):
            raise ApiError(403, "CredentialsInvalid", "Credentials are not correct.")
        return jsonify({"access_token": self._tokens.issue("basic", self._config.username)})

    def credentials_oidc(self) -> Response:
        provider = {
            "id": OIDC_PROVIDER_ID,
            "issuer": f"{self._root()}/oidc",
            "title": "Local client-credentials provider",
            "description": f"Client credentials grant for client '{self._config.oidc_client_id}' "
            "(OPENEO_AUTH_METHOD=client_credentials).",
            "scopes": ["openid"],
        }
        return jsonify({"providers": [provider]})

    def oidc_discovery(self) -> Response:
        issuer = f"{self._root()}/oidc"
        return jsonify(
            {
                "issuer": issuer,
                "token_endpoint": f"{issuer}/token",
                "grant_types_supported": ["client_credentials"],
                "scopes_supported": ["openid"],
                "response_types_supported": ["token"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            }
        )

    def oidc_token(self) -> tuple[Response, int]:
        form = request.form
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        if request.authorization is not None and request.authorization.type == "basic":
            client_id = request.authorization.username or ""
            client_secret = request.authorization.password or ""
        if form.get("grant_type") != "client_credentials":
            return jsonify({"error": "unsupported_grant_type"}), 400
        if not (
            hmac.compare_digest(client_id, self._config.oidc_client_id)
            and hmac.compare_digest(client_secret, self._config.oidc_client_secret)
        ):
            return jsonify(
                {"error": "invalid_client", "error_description": "Unknown client or wrong secret."}
            ), 401
        token = self._tokens.issue("oidc", self._config.username)
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": OIDC_TOKEN_SECONDS,
            "scope": "openid",
        }
        return jsonify(body), 200

    def me(self) -> Response:
        user = self._user()
        # storage and budget are null: the embedded backend sets no quota and charges nothing
        return jsonify(
            {
                "user_id": user,
                "name": user,
                "default_plan": "free",
                "budget": None,
                "storage": None,
                "links": [],
            }
        )

    # --- jobs ---------------------------------------------------------------------------------------

    @staticmethod
    def _job_summary(job: StoredJob) -> dict[str, Any]:
        summary = {
            "id": job.id,
            "title": job.title,
            "description": job.description,
            "status": job.status,
            "progress": job.progress,
            "created": job.created,
            "updated": job.updated,
            "costs": job.costs,
        }
        return {key: value for key, value in summary.items() if value is not None}

    def list_jobs(self) -> Response:
        user = self._user()
        limit = self._positive_int_arg("limit")
        page = request.args.get("page")
        before_seq = self._decode_page(page) if page else None
        jobs = self._store.list_jobs(user, None if limit is None else limit + 1, before_seq)
        links = []
        if limit is not None and len(jobs) > limit:
            jobs = jobs[:limit]
            token = base64.urlsafe_b64encode(f"seq:{jobs[-1].seq}".encode()).decode().rstrip("=")
            links.append({"rel": "next", "href": f"{self._root()}/jobs?limit={limit}&page={token}"})
        return jsonify({"jobs": [self._job_summary(job) for job in jobs], "links": links})

    @staticmethod
    def _positive_int_arg(name: str) -> int | None:
        value = request.args.get(name, "")
        if value == "":
            return None
        if not value.isdigit() or int(value) < 1:
            raise ApiError(400, "InvalidPagination", f"Query parameter '{name}' must be an integer >= 1.")
        return int(value)

    @staticmethod
    def _decode_page(page: str) -> int:
        try:
            kind, _, seq = base64.urlsafe_b64decode(page + "=" * (-len(page) % 4)).decode().partition(":")
            if kind == "seq" and seq.isdigit():
                return int(seq)
        except (ValueError, UnicodeDecodeError):
            pass
        raise ApiError(400, "InvalidPagination", f"Unknown page token {page!r}; follow the 'next' link.")

    def _checked_process(self, process: Any) -> dict[str, Any]:
        try:
            parse_job_process(process, self._config.offers_retired_processes)
        except InvalidProcessError as error:
            raise ApiError(400, error.code, error.message) from error
        return process

    @staticmethod
    def _checked_log_level(value: Any) -> str:
        if value not in LOG_LEVELS:
            raise ApiError(
                400, "LogLevelInvalid", f"log_level must be one of {list(LOG_LEVELS)}, got {value!r}."
            )
        return value

    def create_job(self) -> Response:
        user = self._user()
        body = self._json_body()
        process = self._checked_process(body.get("process"))
        job = self._store.create_job(
            user_id=user,
            process=process,
            title=body.get("title"),
            description=body.get("description"),
            log_level=self._checked_log_level(body.get("log_level", "info")),
        )
        self._store.add_log(job.id, "info", "Job created.")
        logger.info("job %s: created by %s (%s)", job.id, user, job.title)
        location = f"{self._root()}/jobs/{job.id}"
        return self._empty(201, {"Location": location, "OpenEO-Identifier": job.id})

    def describe_job(self, job_id: str) -> Response:
        job = self._job(job_id, self._user())
        described = self._job_summary(job) | {"process": job.process, "log_level": job.log_level}
        if job.usage is not None:
            described["usage"] = job.usage
        return jsonify(described)

    def update_job(self, job_id: str) -> Response:
        job = self._job(job_id, self._user())
        body = self._json_body()
        if job.status in ACTIVE_STATUSES:
            raise ApiError(
                400, "JobLocked", "Batch job is locked due to a queued or running batch computation."
            )
        not_editable = sorted(set(body) - set(_PATCHABLE))
        if not_editable:
            raise ApiError(400, "PropertyNotEditable", f"Properties {not_editable} can't be edited.")
        changes = {key: body[key] for key in ("title", "description") if key in body}
        if "process" in body:
            changes["process"] = self._checked_process(body["process"])
        if "log_level" in body:
            changes["log_level"] = self._checked_log_level(body["log_level"])
        self._store.update_metadata(job.id, changes)
        return self._empty(204)

    def delete_job(self, job_id: str) -> Response:
        job = self._job(job_id, self._user())
        self._runner.delete(job.id)
        return self._empty(204)

    def start_job(self, job_id: str) -> Response:
        user = self._user()
        job = self._job(job_id, user)
        self._rate_limiter.admit(user)
        self._runner.enqueue(job)
        return self._empty(202)

    def stop_job(self, job_id: str) -> Response:
        job = self._job(job_id, self._user())
        self._runner.cancel(job.id)
        return self._empty(204)

    def job_logs(self, job_id: str) -> Response:
        job = self._job(job_id, self._user())
        requested = request.args.get("level") or "debug"
        if requested not in LOG_LEVELS:
            raise ApiError(
                400, "LogLevelInvalid", f"level must be one of {list(LOG_LEVELS)}, got {requested!r}."
            )
        effective = max(requested, job.log_level, key=LOG_LEVELS.index)
        entries = self._store.logs(job.id, request.args.get("offset"), effective)
        logs = [{key: value for key, value in vars(entry).items() if value is not None} for entry in entries]
        return jsonify({"level": effective, "logs": logs, "links": []})

    # --- results ------------------------------------------------------------------------------------

    def _result_items(self, job: StoredJob) -> list[ResultItem]:
        return [ResultItem.from_json(item) for item in self._store.result_items(job.id).values()]

    def _result_status(self, job: StoredJob) -> str:
        return job.status if job.status in TERMINAL_STATUSES else RUNNING

    def list_results(self, job_id: str) -> Response:
        user = self._user()
        job = self._job(job_id, user)
        partial = request.args.get("partial", "").lower() == "true"
        if job.status != FINISHED and not partial:
            raise ApiError(
                400,
                "JobNotFinished",
                f"Batch job {job.id} has status '{job.status}', not '{FINISHED}': there are no results yet.",
            )
        links = ResultLinks(self._root(), self._signer, job.id, user)
        collection = stac_collection(
            job.id, job.title, self._result_status(job), self._result_items(job), links
        )
        return jsonify(collection)

    def _signed_job(self, job_id: str, user: str, signature: str, resource: str) -> tuple[StoredJob, str]:
        """The job a signed URL points at, after checking its signature and expiry."""
        try:
            user_id = decode_user(user)
            expires = int(request.args.get("expires", ""))
        except ValueError as error:
            raise ApiError(404, "NotFound", "Resource not found.") from error
        if not self._signer.is_valid(job_id, user_id, resource, expires, signature):
            raise ApiError(403, "PermissionsInsufficient", "The signature of this result URL is not valid.")
        if expires < time.time():
            raise ApiError(
                410,
                "ResultLinkExpired",
                "The link to the batch job result has expired. Please request the results again.",
            )
        job = self._store.get_job(job_id, user_id)
        if job is None:
            raise _job_not_found(job_id)
        return job, user_id

    def signed_collection(self, job_id: str, user: str, signature: str) -> Response:
        job, user_id = self._signed_job(job_id, user, signature, "collection/")
        links = ResultLinks(self._root(), self._signer, job.id, user_id)
        return jsonify(
            stac_collection(job.id, job.title, self._result_status(job), self._result_items(job), links)
        )

    def signed_item(self, job_id: str, user: str, signature: str, item_id: str) -> Response:
        job, user_id = self._signed_job(job_id, user, signature, f"items/{item_id}")
        stored = self._store.result_items(job.id).get(item_id)
        if stored is None:
            raise ApiError(404, "NotFound", f"Job {job.id} has no result item '{item_id}'.")
        links = ResultLinks(self._root(), self._signer, job.id, user_id)
        response = jsonify(stac_item(job.id, ResultItem.from_json(stored), links))
        response.mimetype = "application/geo+json"
        return response

    def signed_asset(self, job_id: str, user: str, signature: str, file_name: str) -> Response:
        job, _ = self._signed_job(job_id, user, signature, f"assets/{file_name}")
        if file_name not in self._store.result_items(job.id):
            raise ApiError(404, "NotFound", f"Job {job.id} has no result file '{file_name}'.")
        path = self._runner.result_dir(job.id) / file_name
        return self._file_response(path)

    def _file_response(self, path: Path) -> Response:
        """The file, or the single byte range asked for, cut short when a download fault says so.

        ``send_file(conditional=True)`` answers ``HEAD``, ``Range`` (206) and ``If-Range``; a range
        outside the file is werkzeug's 416, told here as an openEO error.
        """
        try:
            response = send_file(path, mimetype=GEOTIFF_MEDIA_TYPE, conditional=True)
        except RequestedRangeNotSatisfiable:
            size = path.stat().st_size
            raise ApiError(
                416,
                "RangeNotSatisfiable",
                f"Range {request.headers.get('Range')!r} lies outside {size} bytes.",
                headers={"Content-Range": f"bytes */{size}"},
            ) from None
        cut_after = None if request.method == "HEAD" else self._state.faults.truncation_for(request.path)
        if cut_after is not None:
            response.response = _cut_short(response.response, cut_after, path.name)
        return response


def _cut_short(body: Iterable[bytes], cut_after: int, file_name: str) -> Iterator[bytes]:
    """``body`` up to ``cut_after`` bytes, then the connection dropped mid-body (a download fault)."""
    sent = 0
    try:
        for chunk in body:
            if sent + len(chunk) > cut_after:
                yield chunk[: cut_after - sent]
                raise ConnectionAbortedError(f"download of {file_name} cut after {cut_after} bytes (fault)")
            sent += len(chunk)
            yield chunk
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def create_openeo_blueprint(state: Any) -> Blueprint:
    """The openEO API over a job store under ``<data_dir>/openeo``; starts the job runner.

    The runner and the store are closed through ``state.on_close`` (the runner first, so no worker
    writes into a closed store). Jobs left running are resumed by the next backend on that directory.
    """
    openeo_dir = Path(state.config.data_dir) / "openeo"
    store = JobStore(openeo_dir)
    runner = JobRunner(state, store, openeo_dir / "results")
    api = OpenEOApi(state, store, runner)
    runner.start()

    def close() -> None:
        runner.stop()
        store.close()

    state.on_close.append(close)
    return api.blueprint
