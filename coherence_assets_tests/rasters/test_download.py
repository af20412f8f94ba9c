"""Downloads over real HTTP on 127.0.0.1: complete files only, resumable, retried, bounded."""

from __future__ import annotations

import os

import fsspec
import pytest
import requests

from coherence_assets.http_session import retrying_session
from coherence_assets.rasters.asset_matching import safe_target_path
from coherence_assets.rasters.download import (
    DownloadBatchError,
    DownloadJob,
    IncompleteDownloadError,
    download_all,
    download_asset,
)
from coherence_assets_tests.rasters.file_server import FileServer

CONTENT = os.urandom(300_000)


@pytest.fixture
def server():
    with FileServer() as running:
        yield running


@pytest.fixture
def session():
    with retrying_session(attempts=3, backoff_seconds=0.0, raise_on_status=False) as retrying:
        yield retrying


@pytest.fixture
def fs():
    return fsspec.filesystem("file")


def test_download_writes_the_exact_bytes_and_no_part_file(server, session, fs, tmp_path):
    href = server.add_file("/results/a.tif", CONTENT)
    target = f"{tmp_path}/rasters/20230701_20230713.tif"

    outcome = download_asset(session, href, fs, target, expected_size=len(CONTENT))

    assert outcome.action == "downloaded"
    assert outcome.size == len(CONTENT)
    assert (tmp_path / "rasters" / "20230701_20230713.tif").read_bytes() == CONTENT
    assert not os.path.exists(target + ".part")


def test_cut_connection_raises_naming_href_and_bytes_then_next_run_resumes(server, session, fs, tmp_path):
    href = server.add_file("/results/a.tif", CONTENT)
    target = f"{tmp_path}/a.tif"
    server.cut_next_response("/results/a.tif", after_bytes=100_000)

    with pytest.raises(IncompleteDownloadError) as raised:
        download_asset(session, href, fs, target, max_attempts=1, chunk_size=4096)
    received = os.path.getsize(target + ".part")
    assert 0 < received <= 100_000
    assert f"{href} was cut short: received {received} of 300000 bytes" in str(raised.value)
    assert not os.path.exists(target)

    outcome = download_asset(session, href, fs, target)

    assert outcome.action == "resumed"
    assert server.requests[-1].range_header == f"bytes={received}-"
    assert (tmp_path / "a.tif").read_bytes() == CONTENT
    assert not os.path.exists(target + ".part")


def test_cut_connection_keeps_every_byte_received_with_default_chunks(server, session, fs, tmp_path):
    href = server.add_file("/results/a.tif", CONTENT)
    server.cut_next_response("/results/a.tif", after_bytes=200_000)

    with pytest.raises(IncompleteDownloadError):
        download_asset(session, href, fs, f"{tmp_path}/a.tif", max_attempts=1)

    assert os.path.getsize(f"{tmp_path}/a.tif.part") == 200_000


def test_cut_connection_is_resumed_within_one_call(server, session, fs, tmp_path):
    href = server.add_file("/results/a.tif", CONTENT)
    server.cut_next_response("/results/a.tif", after_bytes=50_000)
    server.cut_next_response("/results/a.tif", after_bytes=50_000)

    outcome = download_asset(
        session, href, fs, f"{tmp_path}/a.tif", expected_size=len(CONTENT), chunk_size=4096
    )

    assert (outcome.action, outcome.attempts) == ("resumed", 3)
    ranges = [request.range_header for request in server.requests]
    assert ranges[0] is None
    assert all(header.startswith("bytes=") for header in ranges[1:])
    assert (tmp_path / "a.tif").read_bytes() == CONTENT


def test_server_ignoring_range_restarts_from_zero(server, session, fs, tmp_path):
    href = server.add_file("/results/a.tif", CONTENT)
    (tmp_path / "a.tif.part").write_bytes(CONTENT[:1000])
    server.ignore_range_requests()

    outcome = download_asset(session, href, fs, f"{tmp_path}/a.tif")

    assert outcome.action == "downloaded"
    assert (tmp_path / "a.tif").read_bytes() == CONTENT


def test_existing_complete_file_is_skipped_without_a_request(server, session, fs, tmp_path):
    href = server.add_file("/results/a.tif", CONTENT)
    (tmp_path / "a.tif").write_bytes(CONTENT)

    outcome = download_asset(session, href, fs, f"{tmp_path}/a.tif", expected_size=len(CONTENT))

    assert outcome.action == "skipped"
    assert server.requests == []


def test_existing_file_of_the_wrong_size_is_downloaded_again(server, session, fs, tmp_path):
    href = server.add_file("/results/a.tif", CONTENT)
    (tmp_path / "a.tif").write_bytes(b"stale")

    download_asset(session, href, fs, f"{tmp_path}/a.tif", expected_size=len(CONTENT))

    assert (tmp_path / "a.tif").read_bytes() == CONTENT


def test_size_contradicting_stac_metadata_is_refused(server, session, fs, tmp_path):
    href = server.add_file("/results/a.tif", CONTENT)

    with pytest.raises(ValueError, match=r"300000 bytes according to the server.*says 12"):
        download_asset(session, href, fs, f"{tmp_path}/a.tif", expected_size=12)
    assert not os.path.exists(f"{tmp_path}/a.tif")


def test_503_is_retried_by_the_session_then_succeeds(server, session, fs, tmp_path):
    href = server.add_file("/results/a.tif", CONTENT)
    server.fail_next_requests("/results/a.tif", status=503, times=2)

    download_asset(session, href, fs, f"{tmp_path}/a.tif")

    assert len(server.requests) == 3
    assert (tmp_path / "a.tif").read_bytes() == CONTENT


def test_persistent_server_error_raises_http_error(server, session, fs, tmp_path):
    href = server.add_file("/results/a.tif", CONTENT)
    server.fail_next_requests("/results/a.tif", status=500, times=10)

    with pytest.raises(requests.HTTPError, match="500"):
        download_asset(session, href, fs, f"{tmp_path}/a.tif")
    assert not os.path.exists(f"{tmp_path}/a.tif")


@pytest.mark.parametrize(
    "name",
    [
        "../escape.tif",
        "/etc/passwd",
        "a/../../b.tif",
        "..\\win.tif",
        "%2e%2e/escape.tif",
        "%252e%252e%252fx.tif",
    ],
)
def test_malicious_asset_names_are_refused_naming_the_asset(name, tmp_path):
    with pytest.raises(ValueError, match=r"asset name .* is refused"):
        safe_target_path(str(tmp_path), name)


def test_download_all_bounds_concurrency_reports_progress_and_keeps_order(server, session, fs, tmp_path):
    jobs = [
        DownloadJob(server.add_file(f"/results/{index}.tif", CONTENT[index:]), f"{tmp_path}/{index}.tif")
        for index in range(6)
    ]
    progress: list[tuple[int, int]] = []

    outcomes = download_all(
        session, fs, jobs, max_workers=2, on_done=lambda outcome, done, total: progress.append((done, total))
    )

    assert [outcome.target_path for outcome in outcomes] == [job.target_path for job in jobs]
    assert sorted(progress) == [(done, 6) for done in range(1, 7)]
    for index in range(6):
        assert (tmp_path / f"{index}.tif").read_bytes() == CONTENT[index:]


def test_download_all_finishes_the_others_and_lists_failures(server, session, fs, tmp_path):
    good = server.add_file("/results/good.tif", CONTENT)
    missing = server.url("/results/missing.tif")

    with pytest.raises(DownloadBatchError, match=r"1 of 2 downloads failed: .*missing\.tif"):
        download_all(session, fs, [(missing, f"{tmp_path}/m.tif", None), (good, f"{tmp_path}/g.tif", None)])
    assert (tmp_path / "g.tif").read_bytes() == CONTENT
