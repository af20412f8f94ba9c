"""Resources: the input files, where outputs go, which catalogue and openEO backend to use, and the coherence parameters.

These are the production resources, which only speak HTTP to the URLs they are given; the local
set (:mod:`coherence_assets.defs.local_resources`) starts the embedded backend on demand. Which
set is used is decided once, when the definitions load (:func:`coherence_assets.definitions.default_resources`).
Defaults come from the environment (:class:`Settings`), so the UI, the daemon and the CLI agree;
each field can be overridden per run in the launchpad.
"""

import hashlib
import logging
import os
import threading
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field, model_validator

from coherence_assets.catalogue.odata_client import BurstCatalogueClient
from coherence_assets.cdse_facts import APEX_REPOSITORY, check_temporal_baselines
from coherence_assets.jobs.limits import CDSE_LIMITS, BackendLimits
from coherence_assets.jobs.processes import GITHUB_API_URL, PROCESS_NAMES, CoherenceRequest
from coherence_assets.jobs.tick import DEFAULT_TICK_POLICY, TickPolicy
from coherence_assets.settings import (
    DEFAULT_TEMPORAL_BASELINES_DAYS,
    Settings,
    catalogue_url_required_message,
    check_auth_method,
)
from coherence_assets.storage import DataStore

if TYPE_CHECKING:  # openeo loads in the runs and sensor ticks that connect, not with the definitions
    import openeo

log = logging.getLogger(__name__)


class CoherenceStorage(dg.ConfigurableResource):
    """The output tree under ``COHERENCE_DATA_DIR`` (a path or an fsspec URL)."""

    data_dir: str = Field(
        description="Root of all outputs: a folder or an fsspec URL such as s3://bucket/prefix"
    )

    @property
    def store(self) -> DataStore:
        return DataStore(self.data_dir)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """A missing bucket or a store that does not answer fails the run at its start, in one line. A
        sensor tick (no run) checks for itself, so that it can skip with that line instead of failing
        with Dagster's resource-error trace."""
        if context.run is not None:
            self.store.check_reachable()


# The two input files are two resources of one field each, so a run can override one in the
# launchpad and keep the other: a run config that names a resource replaces all of its configured
# values, and a field whose value comes from the environment has no class default to fall back to.
class BurstsFile(dg.ConfigurableResource):
    """The burst map (``COHERENCE_BURSTS_FILE``) that ``burst_catalogue`` validates into the ``burst`` partitions."""

    path: str = Field(
        description="Path of the burst map (GeoJSON, GeoPackage or GeoParquet, any CRS) with burst_id, "
        "subswath_name, relative_orbit_number and geometry"
    )


class AoiFile(dg.ConfigurableResource):
    """The areas of interest (``COHERENCE_AOI_FILE``) that ``coherence_aoi_series`` summarises the cube over."""

    path: str = Field(
        description="Path of the areas of interest (GeoJSON, GeoPackage or GeoParquet, any CRS) with an aoi_id "
        "column and polygons"
    )


class BurstCatalogue(dg.ConfigurableResource):
    """The OData ``Bursts`` catalogue at ``url``, such as CDSE's."""

    url: str = Field(description="OData base URL, e.g. https://catalogue.dataspace.copernicus.eu/odata/v1")
    backend_url: str = Field(
        default="",
        description="The openEO backend the catalogue goes with; named in the error when url is empty",
    )

    def client(self) -> BurstCatalogueClient:
        if not self.url:
            raise ValueError(catalogue_url_required_message(self.backend_url))
        return BurstCatalogueClient(self.url)


# Authenticated connections by backend and identity, kept for the life of the process: the sensor
# ticks every few seconds and a fresh login costs four requests (capabilities, provider list,
# discovery, token) where the tick itself needs one. A refused token is renewed by logging in again.
_connections: dict[tuple[str | None, ...], "openeo.Connection"] = {}
_connections_lock = threading.Lock()


class OpenEOBackend(dg.ConfigurableResource):
    """The openEO backend at ``url``, such as CDSE's.

    Authentication follows the ``openeo`` client's own environment conventions
    (``OPENEO_AUTH_METHOD=client_credentials`` with ``OPENEO_AUTH_CLIENT_ID``,
    ``OPENEO_AUTH_CLIENT_SECRET``, ``OPENEO_AUTH_PROVIDER_ID``), or a refresh token the user
    stored earlier with ``openeo-auth``; a run never starts an interactive login.
    """

    url: str = Field(description="An openEO backend URL such as https://openeo.dataspace.copernicus.eu")
    max_running_jobs: int = Field(
        default=CDSE_LIMITS.max_running_jobs, description="Jobs the backend runs at once (default: CDSE's)"
    )
    min_seconds_between_starts: float = Field(
        default=CDSE_LIMITS.min_seconds_between_starts, description="Spacing of job starts (default: CDSE's)"
    )
    orphan_grace_seconds: float = Field(
        default=300.0,
        description="Age after which a created job of ours that no ledger owns is deleted (a twin of an "
        "interrupted create); younger ones may still be being recorded",
    )
    jobs_queued_ahead: int = Field(
        default=CDSE_LIMITS.queued_ahead,
        description="Jobs started beyond max_running_jobs to wait in the backend's queue (see jobs.starter)",
    )
    lost_after_ticks: int = Field(
        default=DEFAULT_TICK_POLICY.lost_after_ticks,
        description="Sensor ticks a job may be missing from the backend's listing before it counts as lost",
    )
    max_download_attempts: int = Field(
        default=DEFAULT_TICK_POLICY.max_download_attempts,
        description="Download runs per finished job before giving up",
    )
    download_retry_seconds: float = Field(
        default=DEFAULT_TICK_POLICY.download_retry_seconds,
        description="Wait before requesting a failed download again",
    )
    max_resubmit_runs: int = Field(
        default=DEFAULT_TICK_POLICY.max_resubmit_runs,
        description="Runs that resubmit a failed or lost job before giving up (the backend refusing the "
        "submission, say); the job's own attempts are coherence's max_attempts",
    )
    resubmit_retry_seconds: float = Field(
        default=DEFAULT_TICK_POLICY.resubmit_retry_seconds,
        description="Wait before requesting a failed resubmission run again",
    )

    def limits(self) -> BackendLimits:
        return BackendLimits(self.max_running_jobs, self.min_seconds_between_starts, self.jobs_queued_ahead)

    def tick_policy(self, max_attempts: int) -> TickPolicy:
        return TickPolicy(
            max_attempts,
            self.lost_after_ticks,
            self.max_download_attempts,
            self.download_retry_seconds,
            self.max_resubmit_runs,
            self.resubmit_retry_seconds,
        )

    @property
    def root_url(self) -> str:
        return self.url

    def _identity(self) -> tuple[str | None, ...]:
        return (
            self.root_url,
            os.environ.get("OPENEO_AUTH_METHOD"),
            os.environ.get("OPENEO_AUTH_PROVIDER_ID"),
            os.environ.get("OPENEO_AUTH_CLIENT_ID"),
            # a changed secret must log in again; only its digest is kept
            hashlib.sha256(os.environ.get("OPENEO_AUTH_CLIENT_SECRET", "").encode()).hexdigest(),
        )

    def connect(self) -> "openeo.Connection":
        """An authenticated connection, reused within the process."""
        with _connections_lock:
            connection = _connections.get(self._identity())
        if connection is None:
            connection = self._authenticated_connection()
            with _connections_lock:
                _connections[self._identity()] = connection
        return connection

    def forget_connection(self) -> None:
        """Drop the reused connection, so the next ``connect`` logs in afresh (after the backend failed us)."""
        with _connections_lock:
            _connections.pop(self._identity(), None)

    def _authenticated_connection(self) -> "openeo.Connection":
        from coherence_assets.jobs.connection import LoginRenewingConnection

        return LoginRenewingConnection(self.url, self._login)

    def _login(self, connection: "openeo.Connection") -> "openeo.Connection":
        """Log in without a browser; also called again when the backend refuses the token (see jobs.connection)."""
        from openeo.rest.auth.oidc import OidcException

        if os.environ.get("OPENEO_AUTH_METHOD"):
            check_auth_method(os.environ["OPENEO_AUTH_METHOD"].strip())  # set after the definitions loaded
            try:
                return connection.authenticate_oidc()
            except OidcException as error:
                # the client's message names the token URL and the provider's answer, never the secret
                raise RuntimeError(
                    f"authentication at {self.url} with OPENEO_AUTH_METHOD={os.environ['OPENEO_AUTH_METHOD']} "
                    f"failed: {error}. Check OPENEO_AUTH_CLIENT_ID, OPENEO_AUTH_CLIENT_SECRET and "
                    "OPENEO_AUTH_PROVIDER_ID"
                ) from None
        try:
            return connection.authenticate_oidc_refresh_token()
        except Exception as error:  # the client raises several types; none may start a browser flow here
            raise RuntimeError(
                f"cannot authenticate non-interactively at {self.url}: set OPENEO_AUTH_METHOD=client_credentials "
                "with OPENEO_AUTH_CLIENT_ID, OPENEO_AUTH_CLIENT_SECRET (and OPENEO_AUTH_PROVIDER_ID), or store a "
                f"refresh token once with `openeo-auth oidc-auth {self.url}` ({type(error).__name__})"
            ) from None


class CoherenceParameters(dg.ConfigurableResource):
    """What to compute: baselines, polarisation, coherence windows and the openEO process."""

    temporal_baselines_days: list[int] = Field(
        default=list(DEFAULT_TEMPORAL_BASELINES_DAYS),
        description="Baselines in days (multiples of 6; COHERENCE_TEMPORAL_BASELINES); pairs are formed for each",
    )
    # the defaults are CoherenceRequest's, so the resource and the domain cannot disagree
    polarisation: str = CoherenceRequest.polarisation
    coherence_window_rg: int = CoherenceRequest.coherence_window_rg
    coherence_window_az: int = CoherenceRequest.coherence_window_az
    process: str = Field(default=CoherenceRequest.process, description=f"One of {', '.join(PROCESS_NAMES)}")
    apex_commit: str = Field(
        default=CoherenceRequest.apex_commit,
        description=f"Commit of {APEX_REPOSITORY} to run sentinel1_sar_coherence at; empty: the commit main "
        "is at when a partition is first submitted (recorded in its ledger and reused by its later jobs)",
    )
    github_api_url: str = Field(
        default=GITHUB_API_URL, description="GitHub's REST API, asked which commit main is at"
    )
    max_attempts: int = Field(
        default=DEFAULT_TICK_POLICY.max_attempts,
        description="Submissions of a pair's job before giving up on it",
    )

    @model_validator(mode="after")
    def _accepted_by_the_process(self) -> "CoherenceParameters":
        """Refuse, when the resource is configured, values the chosen process does not accept."""
        check_temporal_baselines(self.temporal_baselines_days)
        self.request()
        return self

    @property
    def longest_baseline_days(self) -> int:
        return max(self.temporal_baselines_days)

    def request(self) -> CoherenceRequest:
        return CoherenceRequest(
            process=self.process,
            polarisation=self.polarisation,
            coherence_window_rg=self.coherence_window_rg,
            coherence_window_az=self.coherence_window_az,
            apex_commit=self.apex_commit,
            github_api_url=self.github_api_url,
        )


def resource_set(
    settings: Settings,
    *,
    catalogue: BurstCatalogue,
    openeo_backend: OpenEOBackend,
    github_api_url: str = GITHUB_API_URL,
) -> dict[str, dg.ConfigurableResource]:
    """The resources by the keys the assets and sensors ask for, around this catalogue, backend and GitHub API."""
    return {
        "bursts_file": BurstsFile(path=settings.bursts_file),
        "aoi_file": AoiFile(path=settings.aoi_file),
        "storage": CoherenceStorage(data_dir=settings.data_dir),
        "catalogue": catalogue,
        "openeo_backend": openeo_backend,
        "coherence": CoherenceParameters(
            temporal_baselines_days=list(settings.temporal_baselines_days),
            apex_commit=settings.apex_commit,
            github_api_url=github_api_url,
        ),
    }


def production_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources of a deployment whose backend and catalogue are URLs, such as CDSE's."""
    return resource_set(
        settings,
        catalogue=BurstCatalogue(url=settings.catalogue_url, backend_url=settings.backend_url),
        openeo_backend=OpenEOBackend(url=settings.backend_url),
    )
