"""A refused token means: log in again, once, and retry (a backend restarted without its state)."""

from collections.abc import Callable

import pytest
from openeo.rest import OpenEoApiError

from coherence_assets.jobs.connection import LoginRenewingConnection
from coherence_assets_tests.defs.conftest import Chain, RestartableBackend


def restart_without_state(backend: RestartableBackend) -> None:
    """Same port, an empty data folder: every token the old one issued is now unknown."""
    backend.stop()
    backend.data_dir = backend.data_dir.with_name(backend.data_dir.name + "-fresh")
    backend.start()


def test_a_basic_login_refused_after_a_stateless_restart_is_renewed_once_and_the_request_retried(
    restartable_backend: Callable[..., RestartableBackend],
):
    backend = restartable_backend()
    logins: list[str] = []

    def login(connection):
        logins.append(connection.root_url)
        return connection.authenticate_basic("local", "local")

    connection = LoginRenewingConnection(backend.live.url, login)
    assert connection.list_jobs() == []
    restart_without_state(backend)

    assert connection.describe_account()["user_id"] == "local"
    assert len(logins) == 2


def test_a_login_that_fails_again_leaves_the_refusal_to_the_caller(
    restartable_backend: Callable[..., RestartableBackend],
):
    backend = restartable_backend()
    passwords = iter(["local", "wrong"])
    connection = LoginRenewingConnection(
        backend.live.url, lambda connection: connection.authenticate_basic("local", next(passwords))
    )
    restart_without_state(backend)

    with pytest.raises(OpenEoApiError) as refused:
        connection.describe_account()

    assert refused.value.code == "TokenInvalid"


def test_the_shared_connection_survives_a_stateless_backend_restart(
    restartable_backend: Callable[..., RestartableBackend], make_chain: Callable[..., Chain]
):
    """What the sensor, coherence_job and coherence_rasters share: their cached login is renewed, not raised."""
    backend = restartable_backend()
    chain = make_chain(backend.live)
    connection = chain.openeo_backend.connect()
    assert connection.list_jobs() == []
    restart_without_state(backend)

    assert chain.openeo_backend.connect() is connection
    assert connection.list_jobs() == []
