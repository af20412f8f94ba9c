"""The stand-in for GitHub's "get a commit" route answers as GitHub documents it."""

from pathlib import Path

from embedded_openeo.app import create_app
from embedded_openeo.config import BackendConfig
from embedded_openeo.github_api import MAIN_COMMIT

ROUTE = "/github/repos/ESA-APEx/apex_algorithms/commits"
SHA = {"Accept": "application/vnd.github.sha"}


def test_main_and_full_shas_resolve_other_refs_and_repositories_do_not(tmp_path: Path):
    client = create_app(BackendConfig(data_dir=tmp_path)).test_client()

    main = client.get(f"{ROUTE}/main", headers=SHA)
    pinned = "3b16249e9817cafc049836ec273d2c04e08d6969"

    assert (main.status_code, main.mimetype, main.text) == (200, "text/plain", MAIN_COMMIT)
    assert client.get(f"{ROUTE}/{pinned}", headers=SHA).text == pinned
    assert client.get(f"{ROUTE}/main").get_json()["sha"] == MAIN_COMMIT
    unknown = client.get(f"{ROUTE}/no-such-branch", headers=SHA)
    assert (unknown.status_code, unknown.get_json()["message"]) == (
        422,
        "No commit found for SHA: no-such-branch",
    )
    assert client.get("/github/repos/someone/else/commits/main", headers=SHA).status_code == 404
