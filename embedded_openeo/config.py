"""Settings of one embedded backend instance, fixed when it starts.

One frozen object so the Flask app, the job runner and the catalogue all read the same
values, and a test can start a backend with different limits without touching globals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, get_args

from coherence_assets.cdse_facts import (
    CDSE_MAX_RUNNING_JOBS,
    CDSE_MIN_SECONDS_BETWEEN_STARTS,
    LOCAL_BACKEND_HOST,
    LOCAL_BACKEND_PORT,
    LOCAL_PASSWORD,
    LOCAL_USERNAME,
)

# The burst map the product ships for its demo (a copy, see data/README.md): its bursts get their real
# footprints, all others synthetic ones.
DEMO_BURSTS_FILE = Path(__file__).parent / "data" / "s1_bursts_glacierSouthTyrol.geojson"

# The backend's default is coarser: a whole burst at 20 m is 8 million pixels, 4 s a pair on one
# core, and the demo's 48 pairs (with their downloads and cubes) took over 6 minutes on two shared
# cores instead of about 1.5; at 60 m (0.9 million pixels a pair) it stays near that.
DEFAULT_PIXEL_SIZE = 60.0

# "process": each process's own file names (S1_coh_2images_<ref>_<sec>.tif for the APEx process);
# "openeo_date": openEO_<reference date>Z.tif for every process, as APEx's benchmark of
# sentinel1_sar_coherence stored them, with STAC items that give the reference date only.
ResultNaming = Literal["process", "openeo_date"]


@dataclass(frozen=True)
class BackendConfig:
    """How the embedded openEO backend and OData catalogue behave.

    ``min_seconds_between_starts=0`` disables the 429 answer to job starts that come too fast.
    ``bursts_file=None`` gives every burst a synthetic footprint. Scenes cover a burst's whole
    bounding box at ``pixel_size`` metres, NaN outside its footprint, as CDSE's do; ``scene_shape``
    (rows, cols) crops them around the burst's centre, which tests use to make pairs cheap. ``catalogue_now`` is the instant
    the catalogue treats as now (acquisitions after it are not archived yet); ``None`` follows
    the wall clock, a fixed value makes answers reproducible. ``offers_retired_processes=False``
    behaves like today's CDSE: ``sar_coherence`` and ``sar_coherence_parallel`` are neither listed
    nor run. ``result_naming`` chooses how output files are named (see :data:`ResultNaming`).
    ``allow_faults`` opens ``POST /_faults``, which lets anyone who reaches the port break the
    backend: only tests and benchmarks set it.
    """

    data_dir: Path
    host: str = LOCAL_BACKEND_HOST
    port: int = LOCAL_BACKEND_PORT
    username: str = LOCAL_USERNAME
    password: str = LOCAL_PASSWORD
    oidc_client_id: str = "coherence-assets"
    oidc_client_secret: str = "local-secret"
    # CDSE's limits, from the facts the product reads too: the backend stands in for CDSE
    max_running_jobs: int = CDSE_MAX_RUNNING_JOBS
    min_seconds_between_starts: float = CDSE_MIN_SECONDS_BETWEEN_STARTS
    pixel_size: float = DEFAULT_PIXEL_SIZE
    scene_shape: tuple[int, int] | None = None
    job_seconds_per_pair: float = 0.0
    allow_faults: bool = False
    bursts_file: Path | None = DEMO_BURSTS_FILE
    catalogue_now: datetime | None = None
    offers_retired_processes: bool = True
    result_naming: ResultNaming = "process"

    def __post_init__(self) -> None:
        # Callers pass strings from the command line and environment; everything downstream wants a Path.
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.bursts_file is not None:
            object.__setattr__(self, "bursts_file", Path(self.bursts_file))
        if self.result_naming not in get_args(ResultNaming):
            raise ValueError(
                f"result_naming {self.result_naming!r} is not one of {', '.join(get_args(ResultNaming))}"
            )
