"""Which errors are the object store's: only those get its one line (start it, correct AWS_ENDPOINT_URL)."""

import socket

import pytest
import requests
import s3fs

from coherence_assets.storage import unreachable_store_line


def test_a_backend_that_does_not_answer_is_not_blamed_on_the_object_store():
    """urllib3's ReadTimeoutError shares its name with botocore's: an openEO backend (or GitHub) that
    accepts and then stays silent must keep its own error, even on a local data folder."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(requests.exceptions.ReadTimeout) as timed_out:
            requests.get(f"http://127.0.0.1:{silent.getsockname()[1]}/jobs", timeout=0.2)

    assert unreachable_store_line(timed_out.value) is None


def test_an_object_store_that_does_not_answer_gets_its_one_line():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening: refused
        fs = s3fs.S3FileSystem(
            key="test", secret="test", endpoint_url=endpoint, config_kwargs={"retries": {"max_attempts": 1}}
        )
        with pytest.raises(Exception) as refused:
            fs.cat_file("bucket/data/coherence_job/ledger.json")

    line = unreachable_store_line(refused.value)
    assert line is not None and endpoint in line and "AWS_ENDPOINT_URL" in line
