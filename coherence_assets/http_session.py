"""One retrying HTTP session for every plain-HTTP client of the project (catalogue, downloads).

Retries live in urllib3's ``Retry`` rather than hand-written loops: it already backs off
exponentially, honours ``Retry-After`` on 429/503 and retries connect and read time-outs.
"""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRYABLE_STATUSES = (429, 500, 502, 503, 504)


def retrying_session(
    attempts: int = 5,
    backoff_seconds: float = 0.5,
    max_backoff_seconds: float = 60.0,
    pool_size: int = 8,
    raise_on_status: bool = True,
) -> requests.Session:
    """A session that retries idempotent requests on 429, 5xx, resets and time-outs.

    ``attempts`` counts retries after the first try; waits grow as
    ``backoff_seconds * 2**n`` up to ``max_backoff_seconds`` unless the server sends
    ``Retry-After``, which wins. With ``raise_on_status=False`` the last error response is
    handed back instead of a ``RetryError``, so the caller can name its status.
    """
    retry = Retry(
        total=attempts,
        connect=attempts,
        read=attempts,
        status=attempts,
        backoff_factor=backoff_seconds,
        backoff_max=max_backoff_seconds,
        status_forcelist=RETRYABLE_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=raise_on_status,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
