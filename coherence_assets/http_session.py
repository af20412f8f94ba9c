"""One retrying HTTP session for every plain-HTTP client of the project (catalogue, downloads).

Retries live in urllib3's ``Retry`` rather than hand-written loops: it already backs off
exponentially, honours ``Retry-After`` on 429/503 and retries connect and read time-outs.
:func:`get_json` adds the one retry urllib3 cannot see, a 200 whose body is not JSON, and
counts it with the same ``Retry`` policy.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)

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


class MalformedAnswerError(requests.exceptions.RequestException):
    """Every try got HTTP 200 with a body that is not JSON (a proxy's error page, a cut answer)."""


def get_json(
    session: requests.Session, url: str, params: dict[str, str] | None = None, timeout: float = 60.0
) -> tuple[requests.Response, Any]:
    """GET ``url``; the response and, for a 200, its decoded JSON body (``None`` otherwise).

    A 200 whose body is not JSON comes from a proxy or an overloaded server in front of the API,
    so it is retried like a 5xx: with the session's own ``Retry`` policy (count and back-off).
    Raises :class:`MalformedAnswerError` when every try was malformed.
    """
    adapter = session.get_adapter(url)
    retry = adapter.max_retries if isinstance(adapter, HTTPAdapter) else Retry(0)
    while True:
        response = session.get(url, params=params, timeout=timeout)
        if response.status_code != 200:
            return response, None
        try:
            return response, response.json()
        except ValueError as error:
            try:
                retry = retry.increment(method="GET", url=response.url, error=error)
            except MaxRetryError:
                raise MalformedAnswerError(
                    f"{response.url} answered {len(retry.history) + 1} time(s) with a body that is not JSON: "
                    f"{response.text[:200]!r}"
                ) from error
            log.warning(
                "%s answered with a body that is not JSON; retrying: %r", response.url, response.text[:80]
            )
            retry.sleep()
