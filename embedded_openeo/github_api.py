"""A stand-in for the one route of GitHub's REST API the project asks: which commit a branch is at.

``GET /repos/{owner}/{repo}/commits/{ref}`` of the APEx algorithm catalogue only, answered as
GitHub does (docs.github.com, "Get a commit"): the bare 40-hex sha as ``text/plain`` when asked
with ``Accept: application/vnd.github.sha``, else a JSON object with ``sha``; a ref that names no
commit is 422 with GitHub's ``message``; another repository is 404. ``main`` is at one fixed,
made-up commit, so the embedded chain pins its jobs like a live one; the process namespace check
(:mod:`embedded_openeo.processes`) accepts the UDP at any ref.
"""

from __future__ import annotations

import hashlib
import re

from flask import Blueprint, Response, jsonify, request

from coherence_assets.cdse_facts import APEX_BRANCH, APEX_REPOSITORY, LOCAL_GITHUB_API_PATH

GITHUB_API_PREFIX = LOCAL_GITHUB_API_PATH  # one home for the path: the local resources point there

# a made-up commit (no such commit exists upstream), stable across restarts and versions
MAIN_COMMIT = hashlib.sha1(f"{APEX_REPOSITORY}@{APEX_BRANCH} (embedded stand-in)".encode()).hexdigest()
SHA_MEDIA_TYPE = "application/vnd.github.sha"
_COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")
_DOCUMENTATION = "https://docs.github.com/rest/commits/commits#get-a-commit"


def _github_error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"message": message, "documentation_url": _DOCUMENTATION, "status": str(status)}), status


def create_github_blueprint() -> Blueprint:
    """The commits route; register it at :data:`GITHUB_API_PREFIX`, where the local resources look for it."""
    blueprint = Blueprint("github", __name__)

    @blueprint.get("/repos/<owner>/<repo>/commits/<path:ref>")
    def commit(owner: str, repo: str, ref: str) -> Response | tuple[Response, int]:
        if f"{owner}/{repo}" != APEX_REPOSITORY:
            return _github_error(404, "Not Found")
        if ref in (APEX_BRANCH, f"refs/heads/{APEX_BRANCH}"):
            sha = MAIN_COMMIT
        elif _COMMIT_SHA.match(ref):
            sha = ref
        else:
            return _github_error(422, f"No commit found for SHA: {ref}")
        if SHA_MEDIA_TYPE in request.headers.get("Accept", ""):
            return Response(sha, mimetype="text/plain")
        return jsonify({"sha": sha})

    return blueprint
