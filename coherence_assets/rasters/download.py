"""Downloading result assets so that a stored raster is always complete.

Bytes go to ``<target>.part`` and the file gets its final name only once the byte count
matches the expected size, so a crash or a cut connection never leaves a truncated raster
under a name the next step trusts. A cut transfer resumes from the ``.part`` with an HTTP
``Range`` request. Server errors (5xx, 429) are retried by urllib3's ``Retry`` on the session,
which also honours ``Retry-After``; only truncated bodies, which ``Retry`` cannot see, are
resumed here.

An existing file is never trusted by its size: the caller decides what to fetch (the rasters
step validates what is present first). A result URL is usually signed, and a signed URL is a
credential for as long as it lives: no error or log line here carries one, they name the
download by its label (a job and an asset) instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Literal, NamedTuple
from urllib.parse import urlsplit

import fsspec
import requests
import urllib3

from coherence_assets.raster_files.names import PART_SUFFIX
from coherence_assets.storage import make_parent_folder

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 1024 * 1024
DEFAULT_TIMEOUT = (10.0, 120.0)
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class AssetDownloadError(OSError):
    """The server answered a download with an error, or not at all; names the download, never its URL."""


class IncompleteDownloadError(AssetDownloadError):
    """The server kept cutting the transfer short; the ``.part`` file is kept for a later resume."""


class DownloadBatchError(RuntimeError):
    """Some downloads of a batch failed; the others completed and stay in place.

    The message is one line however many failed: the count and the first failure; ``lines``
    says what happened to each one, for the caller to log one line each.
    """

    def __init__(self, failures: list[tuple[str, BaseException]], total: int) -> None:
        self.failures = failures
        self.lines = [
            str(error) if label in str(error) else f"{label}: {type(error).__name__}: {error}"
            for label, error in failures
        ]
        more = f" (and {len(failures) - 1} more, each in the run's log)" if len(failures) > 1 else ""
        super().__init__(f"{len(failures)} of {total} downloads failed; the first: {self.lines[0]}{more}")


class DownloadJob(NamedTuple):
    """One asset to fetch: where from, where to, its size if the STAC metadata states it, and the
    label that names it in messages (its target file unless given)."""

    href: str
    target_path: str
    expected_size: int | None = None
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.target_path


@dataclass(frozen=True)
class DownloadOutcome:
    """What one download did, for logging and asset metadata."""

    href: str
    target_path: str
    size: int
    action: Literal["downloaded", "resumed", "skipped"]
    attempts: int


def download_asset(
    session: requests.Session,
    href: str,
    fs: fsspec.AbstractFileSystem,
    target_path: str,
    expected_size: int | None = None,
    *,
    label: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_attempts: int = 3,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
) -> DownloadOutcome:
    """Fetch ``href`` to ``target_path`` on ``fs``, resuming a ``.part`` left by an earlier try.

    The file gets its final name (replacing any file there) only once complete. Each attempt
    after a cut transfer resumes where it stopped; ``max_attempts`` bounds how often. Messages
    name the download by ``label`` (``target_path`` unless given), never by ``href``.

    Raises
    ------
    IncompleteDownloadError
        If every attempt was cut short; the ``.part`` file stays for the next run.
    AssetDownloadError
        If the server answers with an error once the session's retries are used up, or not at all.
    ValueError
        If the server's size contradicts ``expected_size`` or it answers an unrequested range.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    label = label or target_path
    try:
        return _download(
            session, href, fs, target_path, expected_size, label, chunk_size, max_attempts, timeout
        )
    except requests.RequestException as error:
        # from None: the cause's message holds the (signed) URL
        raise AssetDownloadError(f"{label}: {_without_url(error, href)}") from None


def _download(
    session: requests.Session,
    href: str,
    fs: fsspec.AbstractFileSystem,
    target_path: str,
    expected_size: int | None,
    label: str,
    chunk_size: int,
    max_attempts: int,
    timeout: tuple[float, float],
) -> DownloadOutcome:
    part_path = target_path + PART_SUFFIX
    make_parent_folder(fs, target_path)  # never a bucket: see storage.DataStore.make_parent_folder
    total, resumed = expected_size, False
    for attempt in range(1, max_attempts + 1):
        offset = _usable_part_size(fs, part_path, expected_size)
        if expected_size is None or offset < expected_size:
            with _get_remaining(session, href, offset, timeout) as response:
                offset, total = _check_response(response, label, offset, expected_size)
                resumed = resumed or offset > 0
                try:
                    _write_body(response, fs, part_path, offset, chunk_size)
                except (
                    requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ConnectionError,
                    urllib3.exceptions.ProtocolError,  # raw reads raise urllib3's own errors
                    urllib3.exceptions.ReadTimeoutError,
                ) as error:
                    log.warning(
                        "download of %s cut short on attempt %d: %s",
                        label,
                        attempt,
                        _without_url(error, href),
                    )
                    continue
        received = _size_or_zero(fs, part_path)
        if total is None or received == total:
            fs.mv(part_path, target_path)
            return DownloadOutcome(
                href, target_path, received, "resumed" if resumed else "downloaded", attempt
            )
    raise IncompleteDownloadError(
        f"{label} was cut short: received {_size_or_zero(fs, part_path)} of "
        f"{total if total is not None else 'an unknown number of'} bytes in {max_attempts} attempts; "
        "its .part file is kept and the next run resumes from it"
    )


def download_all(
    session: requests.Session,
    fs: fsspec.AbstractFileSystem,
    jobs: Iterable[DownloadJob | tuple[str, str, int | None]],
    *,
    max_workers: int = 4,
    on_done: Callable[[DownloadOutcome, int, int], None] | None = None,
) -> list[DownloadOutcome]:
    """Download ``jobs`` with at most ``max_workers`` transfers at once, in the order given.

    Every job runs even when others fail, so one bad asset does not waste the rest;
    ``on_done(outcome, done, total)`` is called as each one completes (for progress logs).

    Raises
    ------
    DownloadBatchError
        With each failed download's label and error, after all other jobs have finished.
    """
    if max_workers < 1:
        raise ValueError(f"max_workers must be at least 1, got {max_workers}")
    queued = [DownloadJob(*job) for job in jobs]
    outcomes: dict[int, DownloadOutcome] = {}
    failures: list[tuple[str, BaseException]] = []
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="download") as pool:
        futures = {
            pool.submit(
                download_asset, session, job.href, fs, job.target_path, job.expected_size, label=job.name
            ): index
            for index, job in enumerate(queued)
        }
        for future in as_completed(futures):
            index = futures[future]
            try:
                outcomes[index] = future.result()
            except Exception as error:  # reported together below, after the other downloads
                failures.append((queued[index].name, error))
                continue
            if on_done is not None:
                on_done(outcomes[index], len(outcomes), len(queued))
    if failures:
        raise DownloadBatchError(failures, len(queued)) from failures[0][1]
    return [outcomes[index] for index in range(len(queued))]


def _usable_part_size(fs: fsspec.AbstractFileSystem, part_path: str, expected_size: int | None) -> int:
    """Bytes of ``part_path`` worth resuming from; a ``.part`` larger than the asset is discarded."""
    offset = _size_or_zero(fs, part_path)
    if expected_size is not None and offset > expected_size:
        fs.rm(part_path)
        return 0
    return offset


def _get_remaining(
    session: requests.Session, href: str, offset: int, timeout: tuple[float, float]
) -> requests.Response:
    """GET the bytes from ``offset`` on (all of them from 0)."""
    response = _get(session, href, offset, timeout)
    if offset and response.status_code == 416:
        # What the .part holds is not a prefix of what the server now has: start over.
        response.close()
        response = _get(session, href, 0, timeout)
    return response


def _get(
    session: requests.Session, href: str, offset: int, timeout: tuple[float, float]
) -> requests.Response:
    # identity: the byte count must match Content-Length, which a compressed body would not.
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return session.get(href, headers=headers, stream=True, timeout=timeout)


def _check_response(
    response: requests.Response, label: str, requested_offset: int, expected_size: int | None
) -> tuple[int, int | None]:
    """The offset the body starts at and the asset's full size, checked against what was asked."""
    if response.status_code >= 400:
        raise AssetDownloadError(
            f"{label}: the server answered HTTP {response.status_code} {response.reason}"
        )
    if response.status_code == 206:
        offset, total = _parse_content_range(response.headers.get("Content-Range", ""), label)
        if offset != requested_offset:
            raise ValueError(
                f"{label} answered a range from byte {offset}, but byte {requested_offset} was requested"
            )
    else:
        # 200 is the whole file, also when a range was asked for: restart from zero.
        offset, total = 0, _content_length(response)
    if expected_size is not None and total is not None and total != expected_size:
        raise ValueError(
            f"{label} is {total} bytes according to the server, but its STAC metadata says "
            f"{expected_size}; refusing to store a raster of uncertain size"
        )
    return offset, total if total is not None else expected_size


def _write_body(
    response: requests.Response, fs: fsspec.AbstractFileSystem, part_path: str, offset: int, chunk_size: int
) -> None:
    # read1 hands over whatever arrived, up to chunk_size: iter_content (urllib3's read(amt)) waits
    # for a full chunk and drops it when the connection is cut, so a resume would start from less
    with fs.open(part_path, "ab" if offset else "wb") as part:
        while chunk := response.raw.read1(chunk_size):
            part.write(chunk)


def _parse_content_range(header: str, label: str) -> tuple[int, int | None]:
    match = _CONTENT_RANGE.match(header.strip())
    if match is None:
        raise ValueError(
            f"{label} answered 206 with Content-Range {header!r}, expected 'bytes start-end/size'"
        )
    size = match.group(3)
    return int(match.group(1)), None if size == "*" else int(size)


def _content_length(response: requests.Response) -> int | None:
    length = response.headers.get("Content-Length")
    return int(length) if length is not None else None


def _without_url(error: BaseException, href: str) -> str:
    """``error``'s text with the URL left out, whole or as requests quotes its path and query."""
    text = f"{type(error).__name__}: {error}"
    sent = getattr(getattr(error, "request", None), "url", None) or ""
    forms = set()
    for url in filter(None, (href, sent)):
        parts = urlsplit(url)
        forms |= {url, f"{parts.path}?{parts.query}", parts.path}
    for form in sorted(forms - {"", "?"}, key=len, reverse=True):
        text = text.replace(form, "<result URL>")
    return text


def _size_or_zero(fs: fsspec.AbstractFileSystem, path: str) -> int:
    return fs.size(path) if fs.exists(path) else 0
