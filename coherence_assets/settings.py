"""The project's environment variables (README, "Configuration"), read in one place.

Every other module takes a :class:`Settings` (or the values in it) instead of reading them
itself, so the defaults below are the single source of truth. Two kinds of variable are not the
project's and are read where their owners' conventions put them, at run time: the ``openeo``
client's ``OPENEO_AUTH_*`` (by the ``OpenEOBackend`` resource when it logs in; only the method is
checked here, so a typo is told before anything runs) and Dagster's ``DAGSTER_HOME`` (by the demo
and the ``backfill`` and ``ui`` commands, through :func:`dagster_home`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from coherence_assets.cdse_facts import (
    APEX_REPOSITORY,
    LOCAL_BACKEND_HOST,
    LOCAL_BACKEND_PORT,
    LOCAL_GITHUB_API_PATH,
    check_temporal_baselines,
    is_commit_sha,
)

LOCAL_BACKEND = "local"
CDSE_CATALOGUE_URL = "https://catalogue.dataspace.copernicus.eu/odata/v1"
# CDSE's openEO URLs as users write them: with or without a trailing slash or the versioned API path;
# openeofed is CDSE's federation, the URL APEx's own records use
CDSE_OPENEO_URL_PATTERN = re.compile(
    r"https://openeo(fed)?\.dataspace\.copernicus\.eu(/openeo(/\d+(\.\d+)*)?)?/?"
)
# The methods the openeo client's authenticate_oidc() knows for OPENEO_AUTH_METHOD (openeo 0.53,
# rest/connection.py); any other value makes it raise a bare ValueError mid-run.
KNOWN_AUTH_METHODS = ("client_credentials",)
DEFAULT_TEMPORAL_BASELINES_DAYS = (12,)
DEFAULT_DATA_DIR = "./coherence-data"
DEFAULT_DAGSTER_HOME = "./.dagster_home"
# The instance the demo and `coherence-assets ui` create: a UI backfill launches a run per partition
# range at once, more than a small machine carries, so at most 4 run and the rest queue; and no
# telemetry (nor its banner on the first run).
DEFAULT_INSTANCE_YAML = """\
concurrency:
  runs:
    max_concurrent_runs: 4
telemetry:
  enabled: false
"""
DEMO_BURSTS_FILE_NAME = "s1_bursts_glacierSouthTyrol.geojson"
DEMO_AOI_FILE_NAME = "glacier_aois_southtyrol.geojson"
# Each sensor ticks as often as its work changes, no more: every tick costs CPU whatever it finds (the
# daemon writes the tick and the sensor's state, about 0.1 CPU-s on SQLite on our 2-core machine; the
# code server's idle tick is 4 ms, the job sensor's 90 ms as Dagster opens an instance to build its
# resources), and the idle deployment's whole budget is 0.01 CPU-s/s (issue 16; docs/benchmarks.md).
# - openeo_job_sensor: as the openeo client's MultiBackendJobManager, which polls every 60 s. CDSE's
#   jobs run minutes to hours, and the sensor starts two jobs beyond the two that run (CDSE queues
#   them), so a slot that frees is filled at once; a tick delays a download by a minute at most, and
#   starts one job, which keeps both slots busy while jobs take over two minutes.
# - coherence_cube_sensor: a restack follows the download runs of jobs that took minutes to hours.
# - burst_partitions_sensor: the catalogue changes when someone refreshes it, and the demo and
#   `coherence-assets backfill` tick the sensor themselves right after; only a refresh from the UI or
#   the schedule waits for it.
DEFAULT_JOB_SENSOR_INTERVAL_SECONDS = 60
DEFAULT_CUBE_SENSOR_INTERVAL_SECONDS = 120
DEFAULT_BURST_SENSOR_INTERVAL_SECONDS = 300


def packaged_demo_bursts_file() -> str:
    """Path of the burst map that ships with the package (the South Tyrol glaciers)."""
    return str(resources.files("coherence_assets") / "data" / DEMO_BURSTS_FILE_NAME)


def dagster_home() -> Path:
    """``DAGSTER_HOME``, set to ``./.dagster_home`` (made absolute) when unset, so that Dagster and
    every later message see the same folder."""
    return Path(os.environ.setdefault("DAGSTER_HOME", str(Path(DEFAULT_DAGSTER_HOME).resolve())))


def prepare_dagster_home() -> Path:
    """:func:`dagster_home`, created with :data:`DEFAULT_INSTANCE_YAML` if it has no ``dagster.yaml``
    yet (or an empty one); a ``dagster.yaml`` someone wrote is left as it is."""
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or not config.read_text().strip():
        config.write_text(DEFAULT_INSTANCE_YAML)
    return home


def is_cdse_openeo_url(url: str) -> bool:
    return CDSE_OPENEO_URL_PATTERN.fullmatch(url.strip()) is not None


def catalogue_url_required_message(backend_url: str) -> str:
    """Why no catalogue is known for ``backend_url``, and what to set."""
    return (
        f"OPENEO_BACKEND_URL={backend_url} is neither 'local' nor CDSE's openEO URL, so the burst catalogue "
        "is unknown: set COHERENCE_CATALOGUE_URL to its OData base URL (for CDSE's catalogue: "
        f"{CDSE_CATALOGUE_URL})"
    )


def packaged_demo_aoi_file() -> str:
    """Path of the areas of interest that ship with the package (approximate glacier outlines)."""
    return str(resources.files("coherence_assets") / "data" / DEMO_AOI_FILE_NAME)


def local_backend_url(host: str = LOCAL_BACKEND_HOST, port: int = LOCAL_BACKEND_PORT) -> str:
    return f"http://{host}:{port}"


class SettingsError(ValueError):
    """An environment variable with a value the project cannot use; the message is the one line to print."""


def check_auth_method(method: str) -> None:
    """Refuse an ``OPENEO_AUTH_METHOD`` the client does not know, before it fails inside a run."""
    if method and method not in KNOWN_AUTH_METHODS:
        raise SettingsError(
            f"OPENEO_AUTH_METHOD={method!r} is not a method the openeo client knows: set it to "
            f"{' or '.join(KNOWN_AUTH_METHODS)} (with OPENEO_AUTH_CLIENT_ID and OPENEO_AUTH_CLIENT_SECRET), "
            "or unset it to log in with a refresh token stored by `openeo-auth`"
        )


def parse_temporal_baselines(text: str) -> tuple[int, ...]:
    """``COHERENCE_TEMPORAL_BASELINES`` (comma-separated days) as numbers, each checked like a run's."""
    variable = f"COHERENCE_TEMPORAL_BASELINES={text!r}"
    items = [item.strip() for item in text.split(",")]
    if not all(item.isdigit() for item in items):
        raise SettingsError(f"{variable} is not a comma-separated list of days such as 12 or 12,24")
    baselines = tuple(int(item) for item in items)
    try:
        check_temporal_baselines(baselines)
    except ValueError as error:
        raise SettingsError(f"{variable}: {error}") from None
    return baselines


def _port_from_env(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise SettingsError(f"{name}={text!r} is not a port number (1 to 65535); unset it to use {default}")
    return int(text)


def _sensor_interval_from_env(env: Mapping[str, str], name: str, default: int) -> int:
    """A sensor's minimum interval: its own variable, else ``COHERENCE_SENSOR_INTERVAL_SECONDS`` (every
    sensor's, as tests and quick trials set it), else its default."""
    for variable in (name, "COHERENCE_SENSOR_INTERVAL_SECONDS"):
        text = env.get(variable, "").strip()
        if text:
            if not text.isdigit() or int(text) < 1:
                raise SettingsError(
                    f"{variable}={text!r} is not a whole number of seconds (1 or more); unset it to tick "
                    f"every {default} s"
                )
            return int(text)
    return default


@dataclass(frozen=True)
class Settings:
    """Where outputs go, which burst map and areas of interest to read, and which backend and catalogue to talk to."""

    data_dir: str
    bursts_file: str
    backend_url: str
    catalogue_url: str  # empty when no catalogue is implied: see catalogue_url_required_message
    job_sensor_interval_seconds: int = DEFAULT_JOB_SENSOR_INTERVAL_SECONDS
    cube_sensor_interval_seconds: int = DEFAULT_CUBE_SENSOR_INTERVAL_SECONDS
    burst_sensor_interval_seconds: int = DEFAULT_BURST_SENSOR_INTERVAL_SECONDS
    aoi_file: str = field(default_factory=packaged_demo_aoi_file)
    local_backend_port: int = LOCAL_BACKEND_PORT
    temporal_baselines_days: tuple[int, ...] = DEFAULT_TEMPORAL_BASELINES_DAYS
    apex_commit: str = ""  # empty: main's commit, resolved when a partition is first submitted

    @property
    def uses_embedded_backend(self) -> bool:
        return self.backend_url == LOCAL_BACKEND

    @property
    def local_backend_url(self) -> str:
        """Where the embedded backend that this project starts and looks for answers."""
        return local_backend_url(port=self.local_backend_port)

    @property
    def local_github_api_url(self) -> str:
        """The embedded backend's stand-in for ``https://api.github.com``."""
        return self.local_backend_url + LOCAL_GITHUB_API_PATH

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        check_auth_method(env.get("OPENEO_AUTH_METHOD", "").strip())
        backend_url = env.get("OPENEO_BACKEND_URL", "").strip() or LOCAL_BACKEND
        local_port = _port_from_env(env, "COHERENCE_LOCAL_BACKEND_PORT", LOCAL_BACKEND_PORT)
        baselines = env.get("COHERENCE_TEMPORAL_BASELINES", "").strip()
        apex_commit = env.get("COHERENCE_APEX_COMMIT", "").strip()
        if apex_commit and not is_commit_sha(apex_commit):
            raise SettingsError(
                f"COHERENCE_APEX_COMMIT={apex_commit!r} is not a full commit sha (40 lower-case hex digits) of "
                f"{APEX_REPOSITORY}; unset it to run the commit main is at when a partition is first submitted"
            )
        if backend_url == LOCAL_BACKEND:
            default_catalogue = f"{local_backend_url(port=local_port)}/odata/v1"
        elif is_cdse_openeo_url(backend_url):
            default_catalogue = CDSE_CATALOGUE_URL
        else:
            default_catalogue = ""  # another backend implies no catalogue: it must be named
        return cls(
            data_dir=env.get("COHERENCE_DATA_DIR", "").strip() or DEFAULT_DATA_DIR,
            bursts_file=env.get("COHERENCE_BURSTS_FILE", "").strip() or packaged_demo_bursts_file(),
            backend_url=backend_url.rstrip("/"),
            catalogue_url=(env.get("COHERENCE_CATALOGUE_URL", "").strip() or default_catalogue).rstrip("/"),
            aoi_file=env.get("COHERENCE_AOI_FILE", "").strip() or packaged_demo_aoi_file(),
            local_backend_port=local_port,
            temporal_baselines_days=parse_temporal_baselines(baselines)
            if baselines
            else DEFAULT_TEMPORAL_BASELINES_DAYS,
            apex_commit=apex_commit,
            job_sensor_interval_seconds=_sensor_interval_from_env(
                env, "COHERENCE_JOB_SENSOR_INTERVAL_SECONDS", DEFAULT_JOB_SENSOR_INTERVAL_SECONDS
            ),
            cube_sensor_interval_seconds=_sensor_interval_from_env(
                env, "COHERENCE_CUBE_SENSOR_INTERVAL_SECONDS", DEFAULT_CUBE_SENSOR_INTERVAL_SECONDS
            ),
            burst_sensor_interval_seconds=_sensor_interval_from_env(
                env, "COHERENCE_BURST_SENSOR_INTERVAL_SECONDS", DEFAULT_BURST_SENSOR_INTERVAL_SECONDS
            ),
        )
