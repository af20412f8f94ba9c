"""Checks before a first run: the burst file, the openEO backend, the catalogue and the login.

A misconfigured URL would otherwise show as minutes of retries and a wall of tracebacks inside
Dagster runs; these checks answer in seconds with one line that names the URL and what to set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import requests

from coherence_assets.settings import Settings, catalogue_url_required_message
from coherence_assets.storage import DataFolderUnusable, DataStore

if TYPE_CHECKING:
    import geopandas as gpd

# connect, read: a closed port fails at once, a silent host within seconds
PROBE_TIMEOUT_SECONDS = (3.0, 10.0)


class SetupError(Exception):
    """A failure the user can fix; its message is the one line to print: the cause and the remedy."""


def check_url_answers(url: str, what: str, remedy: str, params: dict[str, str] | None = None) -> None:
    """``url`` answers with a success status within seconds, or a :class:`SetupError` naming it."""
    try:
        response = requests.get(url, params=params, timeout=PROBE_TIMEOUT_SECONDS)
    except requests.RequestException as error:
        reason = type(error).__name__
        raise SetupError(f"{what} at {url} does not answer ({reason}): {remedy}") from None
    if not response.ok:
        raise SetupError(f"{what} at {url} answered HTTP {response.status_code}: {remedy}")


def check_burst_file(settings: Settings) -> gpd.GeoDataFrame:
    """The validated burst catalogue; the burst file's validation message as a :class:`SetupError`."""
    # geopandas only here: the definitions import this module for SetupError
    from coherence_assets.bursts.burst_map import BurstMapError, load_burst_catalogue

    try:
        return load_burst_catalogue(settings.bursts_file)
    except BurstMapError as error:
        raise SetupError(str(error)) from None


def check_data_folder(settings: Settings) -> None:
    """The data folder's bucket exists and its store answers (nothing to check on a local disk)."""
    try:
        DataStore(settings.data_dir).check_reachable()
    except DataFolderUnusable as error:
        raise SetupError(str(error)) from None


def check_login(backend_url: str, login: Callable[[], object]) -> None:
    """``login()`` succeeds; its error (which never contains the secret) as a :class:`SetupError`."""
    try:
        login()
    except SetupError:
        raise  # already the one line to print (e.g. the port holds another folder's embedded backend)
    except Exception as error:  # the openeo client and requests raise many types; all mean "no login"
        message = str(error).rstrip(".") or type(error).__name__
        raise SetupError(f"login at {backend_url} failed: {message}") from None


def check_before_first_run(settings: Settings, login: Callable[[], object]) -> int:
    """Burst file, data folder, backend, catalogue and login in the order a user fixes them; the number of bursts.

    ``login`` connects and authenticates (starting the embedded backend when ``local``); it is
    called last, so a wrong URL is reported before anything heavy is loaded or started.
    """
    bursts = check_burst_file(settings)
    check_data_folder(settings)
    catalogue_probe = {
        # one record of the first burst: a catalogue may refuse queries that do not name a burst
        "$filter": f"BurstId eq {int(bursts['burst_id'].iloc[0])}",
        "$top": "1",
    }
    catalogue_remedy = "set COHERENCE_CATALOGUE_URL to the OData base URL of a Bursts catalogue"
    if not settings.uses_embedded_backend:
        check_url_answers(
            settings.backend_url,
            "the openEO backend",
            "set OPENEO_BACKEND_URL to a reachable openEO backend, or unset it to use the embedded one",
        )
        if not settings.catalogue_url:
            raise SetupError(catalogue_url_required_message(settings.backend_url))
        check_url_answers(
            f"{settings.catalogue_url}/Bursts", "the burst catalogue", catalogue_remedy, catalogue_probe
        )
    check_login(settings.local_backend_url if settings.uses_embedded_backend else settings.backend_url, login)
    if settings.uses_embedded_backend:  # it answers only now that login has started it
        check_url_answers(
            f"{settings.catalogue_url}/Bursts", "the burst catalogue", catalogue_remedy, catalogue_probe
        )
    return len(bursts)
