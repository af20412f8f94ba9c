"""Everything one running embedded backend holds, handed to each blueprint instead of globals.

The openEO side registers its own shutdown work (job runner threads, stores) in ``on_close`` so
that the server, whichever way it stops, releases it through one ``close()``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from embedded_openeo.acquisitions import AcquisitionArchive
from embedded_openeo.burst_registry import BurstRegistry
from embedded_openeo.config import BackendConfig
from embedded_openeo.faults import FaultInjector

logger = logging.getLogger(__name__)


@dataclass
class BackendState:
    """Config, fault rules, burst footprints and the acquisition archive of one backend."""

    config: BackendConfig
    faults: FaultInjector
    bursts: BurstRegistry
    archive: AcquisitionArchive
    on_close: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def create(cls, config: BackendConfig) -> BackendState:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        bursts = BurstRegistry.from_file(config.bursts_file)
        return cls(
            config=config,
            faults=FaultInjector(),
            bursts=bursts,
            archive=AcquisitionArchive(bursts, now=config.catalogue_now),
        )

    def close(self) -> None:
        """Run the ``on_close`` callbacks, last registered first, each once; one failing does not stop the rest."""
        while self.on_close:
            callback = self.on_close.pop()
            try:
                callback()
            except Exception:
                logger.exception("embedded backend: shutdown step %r failed", callback)
        logger.info("embedded backend state closed (%s)", self.config.data_dir)
