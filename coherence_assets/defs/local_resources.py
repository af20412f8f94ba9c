"""The local resources (``OPENEO_BACKEND_URL=local``): the production ones, starting the embedded backend on demand.

This is the one module of the product that starts the embedded backend (the ``embedded_openeo``
package beside it, a stand-in for CDSE); it imports it only when a resource is first used, and
then speaks to it over HTTP like to any backend.
"""

from typing import TYPE_CHECKING

import dagster as dg

from coherence_assets.catalogue.odata_client import BurstCatalogueClient
from coherence_assets.cdse_facts import (
    LOCAL_BACKEND_DATA_DIR,
    LOCAL_BACKEND_HOST,
    LOCAL_BACKEND_PORT,
    LOCAL_PASSWORD,
    LOCAL_USERNAME,
)
from coherence_assets.defs.resources import BurstCatalogue, OpenEOBackend, resource_set
from coherence_assets.preflight import SetupError
from coherence_assets.settings import LOCAL_BACKEND, Settings, local_backend_url

if TYPE_CHECKING:  # openeo loads in the runs and sensor ticks that connect (see defs.resources)
    import openeo


class EmbeddedBackendUnusable(SetupError, RuntimeError):
    """No embedded backend of this project's folder: one line for the CLI, "unreachable" for the sensor."""


def ensure_embedded_backend(port: int, data_dir: str) -> str:
    """The base URL of the embedded backend of ``data_dir`` on 127.0.0.1, started unless it answers already.

    A backend of another folder on that port, or one that does not come up, is an
    :class:`EmbeddedBackendUnusable` whose one line names the folders or the log.
    """
    from embedded_openeo.server import EmbeddedBackendError, ensure_local_backend

    try:
        return ensure_local_backend(LOCAL_BACKEND_HOST, port, data_dir)
    except EmbeddedBackendError as error:
        raise EmbeddedBackendUnusable(str(error)) from None


class LocalBurstCatalogue(BurstCatalogue):
    """The embedded backend's OData catalogue at ``url``, started on demand before each use."""

    backend_port: int = LOCAL_BACKEND_PORT
    backend_data_dir: str = LOCAL_BACKEND_DATA_DIR

    def client(self) -> BurstCatalogueClient:
        ensure_embedded_backend(self.backend_port, self.backend_data_dir)
        return super().client()


class LocalOpenEOBackend(OpenEOBackend):
    """The embedded openEO backend on 127.0.0.1, started on demand, with its documented basic login."""

    url: str = LOCAL_BACKEND
    backend_port: int = LOCAL_BACKEND_PORT
    backend_data_dir: str = LOCAL_BACKEND_DATA_DIR
    username: str = LOCAL_USERNAME
    password: str = LOCAL_PASSWORD  # the embedded backend's documented default, not a secret

    @property
    def root_url(self) -> str:
        return local_backend_url(port=self.backend_port)

    def _identity(self) -> tuple[str | None, ...]:
        return (*super()._identity(), self.username)

    def connect(self) -> "openeo.Connection":
        """As :meth:`OpenEOBackend.connect`, after starting the embedded backend unless it answers."""
        ensure_embedded_backend(self.backend_port, self.backend_data_dir)
        return super().connect()

    def _authenticated_connection(self) -> "openeo.Connection":
        from coherence_assets.jobs.connection import LoginRenewingConnection

        return LoginRenewingConnection(
            self.root_url, lambda connection: connection.authenticate_basic(self.username, self.password)
        )


def local_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources of ``OPENEO_BACKEND_URL=local``; a catalogue named elsewhere is used as it is."""
    embedded_catalogue = settings.catalogue_url.startswith(settings.local_backend_url)
    return resource_set(
        settings,
        catalogue=(
            LocalBurstCatalogue(url=settings.catalogue_url, backend_port=settings.local_backend_port)
            if embedded_catalogue
            else BurstCatalogue(url=settings.catalogue_url)
        ),
        openeo_backend=LocalOpenEOBackend(backend_port=settings.local_backend_port),
        github_api_url=settings.local_github_api_url,  # the embedded backend's stand-in for GitHub's route
    )
