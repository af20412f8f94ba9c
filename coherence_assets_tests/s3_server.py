"""A real S3 server for tests: moto's server on a free port of 127.0.0.1, reached over HTTP by s3fs.

The server runs in a thread of the test process, so its objects outlive a :meth:`S3Server.stop`
and a :meth:`S3Server.start` on the same port: a test can take the store away mid-run and give it
back. Other processes (Dagster runs, lease racers) reach it through the standard AWS variables of
:meth:`S3Server.environment`. moto's server honours ``If-None-Match: *`` (412), which the ledger's
lease relies on.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest

# moto accepts any credentials; these only keep botocore from looking for real ones
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class S3Server:
    """moto's S3 server, stoppable and restartable on its port with its objects kept."""

    def __init__(self) -> None:
        self.port = 0
        self._server = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer  # imported by the tests that use S3 only: it is slow

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line per request in the test output
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def environment(self) -> dict[str, str]:
        """The standard AWS variables that send boto3 and s3fs (here or in a child process) to this server."""
        return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint_url}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, **_boto_credentials())

    def new_bucket(self) -> str:
        """A fresh bucket of a unique name (the server's objects are shared by every test of the process)."""
        name = f"coherence-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def bucket_names(self) -> set[str]:
        return {bucket["Name"] for bucket in self.client().list_buckets()["Buckets"]}


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The server, with this process's AWS variables pointing at it and s3fs's instance cache cleared.

    fsspec keeps one ``S3FileSystem`` per set of arguments for the whole process; a cached one
    would keep the endpoint and the listing cache of an earlier test.
    """
    import s3fs

    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    return s3_server
