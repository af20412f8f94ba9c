"""Faults that tests switch on to see the project survive what CDSE does under load.

A rule is either an HTTP fault (an error status, a slow answer, or both), a catalogue answer
that is empty or not JSON although its status is 200, a number of jobs that end in error, or
asset downloads cut short. Rules with ``times`` are used up one match at
a time; the first matching rule wins.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import asdict, dataclass, fields
from http import HTTPStatus
from typing import Any, Literal, get_args

logger = logging.getLogger(__name__)

FaultKind = Literal["http", "empty_answer", "malformed_answer", "job_error", "truncate_download"]
# The kinds that answer a request in place of the backend (the others act on jobs and downloads).
ANSWER_KINDS: tuple[FaultKind, ...] = ("http", "empty_answer", "malformed_answer")
DEFAULT_JOB_ERROR = "Injected fault: the job failed on the backend"
# What a proxy in front of a catalogue sends when the catalogue behind it is down.
DEFAULT_MALFORMED_ANSWER = "<html><body><h1>502 Bad Gateway</h1></body></html>"
_HTTP_STATUSES = {status.value for status in HTTPStatus}


@dataclass
class FaultRule:
    """One fault, as posted to ``/_faults``.

    - ``http``: requests whose path matches ``path`` (a regular expression, searched) and whose
      method is ``method`` (any when ``None``) wait ``delay_seconds``, then get ``status`` (if
      set) with ``message``; a 429 carries ``Retry-After: retry_after`` (1 s unless given).
    - ``empty_answer``: matching requests get HTTP 200 with an OData page of no records
      (``"value": []``), as a catalogue whose index lags or was rebuilt answers.
    - ``malformed_answer``: matching requests get HTTP 200 with an HTML body (``message``, or a
      proxy's 502 page), not JSON.
    - ``job_error``: the next jobs to run end in error with ``message``.
    - ``truncate_download``: downloads whose path matches ``path`` stop after
      ``truncate_after_bytes`` bytes although ``Content-Length`` promised the whole file.

    ``times`` is how many matches the rule lasts (``None``: until ``DELETE /_faults``).
    """

    kind: FaultKind = "http"
    path: str = ".*"
    method: str | None = None
    status: int | None = None
    retry_after: int | None = None
    delay_seconds: float = 0.0
    times: int | None = None
    message: str | None = None
    truncate_after_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in get_args(FaultKind):
            raise ValueError(f"fault kind {self.kind!r} is not one of {get_args(FaultKind)}")
        try:
            re.compile(self.path)
        except re.error as error:
            raise ValueError(f"fault path {self.path!r} is not a regular expression: {error}") from error
        if self.status is not None and (self.status < 400 or self.status not in _HTTP_STATUSES):
            raise ValueError(
                f"fault status must be a standard HTTP error status (4xx or 5xx), got {self.status}"
            )
        if self.times is not None and self.times < 1:
            raise ValueError(f"fault times must be at least 1 (or null for always), got {self.times}")
        if self.delay_seconds < 0:
            raise ValueError(f"fault delay_seconds must not be negative, got {self.delay_seconds}")
        if self.kind == "http" and self.status is None and self.delay_seconds == 0:
            raise ValueError("an http fault needs a status, a delay_seconds, or both")
        if self.kind == "truncate_download" and (
            self.truncate_after_bytes is None or self.truncate_after_bytes < 0
        ):
            raise ValueError("a truncate_download fault needs truncate_after_bytes >= 0")
        if self.status == 429 and self.retry_after is None:
            self.retry_after = 1
        if self.method is not None:
            self.method = self.method.upper()

    @classmethod
    def from_json(cls, payload: Any) -> FaultRule:
        """Build a rule from the JSON body of ``POST /_faults``; ``ValueError`` names what is wrong."""
        if not isinstance(payload, dict):
            raise ValueError(f"a fault rule is a JSON object, got {type(payload).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(f"unknown fault rule fields {unknown}; known fields are {sorted(known)}")
        try:
            return cls(**payload)
        except TypeError as error:
            raise ValueError(f"invalid fault rule {payload}: {error}") from error

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def matches(self, kind: FaultKind, path: str, method: str | None = None) -> bool:
        """Whether this rule applies; a ``job_error`` rule applies to any job, whatever its path."""
        if self.kind != kind:
            return False
        if kind == "job_error":
            return True
        if re.search(self.path, path) is None:
            return False
        return self.method is None or method is None or self.method == method.upper()


class FaultInjector:
    """The active fault rules of one backend, shared by all request threads and the job runner."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)
        logger.info("fault rule added: %s", rule)

    def active(self) -> list[FaultRule]:
        """The rules still in force: a test waits for a rule to be used up before it acts."""
        with self._lock:
            return list(self._rules)

    def clear(self) -> None:
        with self._lock:
            count = len(self._rules)
            self._rules.clear()
        logger.info("fault rules cleared (%d removed)", count)

    def http_fault_for(self, method: str, path: str) -> FaultRule | None:
        """The fault that answers this request in the backend's place, using up one of its ``times``."""
        return self._take(ANSWER_KINDS, path, method)

    def take_job_error(self) -> str | None:
        """The error message the job about to run must end with, or ``None`` to run normally."""
        rule = self._take(("job_error",), "")
        if rule is None:
            return None
        return rule.message or DEFAULT_JOB_ERROR

    def truncation_for(self, path: str) -> int | None:
        """After how many bytes the download at ``path`` must be cut, or ``None`` to send it whole."""
        rule = self._take(("truncate_download",), path)
        return None if rule is None else rule.truncate_after_bytes

    def _take(self, kinds: tuple[FaultKind, ...], path: str, method: str | None = None) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.kind in kinds and rule.matches(rule.kind, path, method):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times == 0:
                            self._rules.remove(rule)
                    break
            else:
                return None
        logger.info("fault fired: %s %s %s (uses left: %s)", rule.kind, method or "", path, rule.times)
        return rule
