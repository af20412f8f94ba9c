"""Downloads over real HTTP on 127.0.0.1: complete files only, resumable, retried, bounded."""

from __future__ import annotations

import os
import socket

import fsspec
import pytest

from coherence_assets.http_session import retrying_session
from coherence_assets.rasters.asset_matching import safe_target_path
from coherence_assets.rasters.download import (
    AssetDownloadError,
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


def test_cut_connection_raises_naming_the_label_and_bytes_then_next_run_resumes(
    server, session, fs, tmp_path
):
    href = server.add_file("/results/a.tif", CONTENT)
    target = f"{tmp_path}/a.tif"
    server.cut_next_response("/results/a.tif", after_bytes=100_000)

    with pytest.raises(IncompleteDownloadError) as raised:
        download_asset(
            session, href, fs, target, max_attempts=1, chunk_size=4096, label="job j-1 asset a.tif"
        )
    received = os.path.getsize(target + ".part")
    assert 0 < received <= 100_000
    assert f"job j-1 asset a.tif was cut short: received {received} of 300000 bytes" in str(raised.value)
    assert "/results/" not in str(raised.value)
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


def test_an_existing_file_of_the_right_size_is_not_trusted_and_is_replaced(server, session, fs, tmp_path):
    href = server.add_file("/results/a.tif", CONTENT)
    (tmp_path / "a.tif").write_bytes(os.urandom(len(CONTENT)))  # garbage of the right size

    outcome = download_asset(session, href, fs, f"{tmp_path}/a.tif", expected_size=len(CONTENT))

    assert outcome.action == "downloaded"
    assert (tmp_path / "a.tif").read_bytes() == CONTENT


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


def test_persistent_server_error_names_the_status_and_the_file_not_the_url(server, session, fs, tmp_path):
    href = server.add_file("/results/a.tif", CONTENT)
    server.fail_next_requests("/results/a.tif", status=500, times=10)

    with pytest.raises(AssetDownloadError, match=r"a\.tif: the server answered HTTP 500") as raised:
        download_asset(session, href, fs, f"{tmp_path}/a.tif")
    assert "/results/" not in str(raised.value)
    assert not os.path.exists(f"{tmp_path}/a.tif")


def test_a_server_that_does_not_answer_is_named_without_the_signed_url(session, fs, tmp_path):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    href = f"http://127.0.0.1:{port}/results/assets/u/c2lnbmF0dXJl/a.tif?expires=1700000000"

    with pytest.raises(AssetDownloadError) as raised:
        download_asset(session, href, fs, f"{tmp_path}/a.tif", label="job j-1 asset a.tif")

    message = str(raised.value)
    assert message.startswith("job j-1 asset a.tif: ConnectionError")
    assert "c2lnbmF0dXJl" not in message and "expires" not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


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

    with pytest.raises(
        DownloadBatchError, match=r"^1 of 2 downloads failed; the first: job j-1 asset m\.tif: "
    ) as raised:
        download_all(
            session,
            fs,
            [
                DownloadJob(missing, f"{tmp_path}/m.tif", None, "job j-1 asset m.tif"),
                DownloadJob(good, f"{tmp_path}/g.tif"),
            ],
        )
    assert (tmp_path / "g.tif").read_bytes() == CONTENT
    assert missing not in str(raised.value)


def test_many_failures_are_one_line_with_the_count_and_the_first(server, session, fs, tmp_path):
    jobs = [
        DownloadJob(server.url(f"/results/{index}.tif"), f"{tmp_path}/{index}.tif") for index in range(16)
    ]

    with pytest.raises(DownloadBatchError) as raised:
        download_all(session, fs, jobs)

    message = str(raised.value)
    assert message.startswith("16 of 16 downloads failed; the first: ") and message.count("tif") == 1
    assert message.endswith("(and 15 more, each in the run's log)")
    assert "\n" not in message and len(message) < 300
    assert len(raised.value.failures) == 16
