"""The OData ``Bursts`` endpoint, answering like CDSE's for the queries a burst-pair client makes.

Supported: ``$filter`` with ``and``-joined comparisons (``eq ne gt ge lt le``) of record
properties to literals, optionally parenthesised; ``$top`` (default 20, at most 1000);
``$skip`` (at most 10000); ``$orderby`` on ``ContentDate/Start`` or ``ContentDate/End``;
``$count=true``; ``@odata.nextLink`` paging. Anything else in a filter is a 400 that names it,
so a client never mistakes an ignored condition for an empty answer. Without ``$orderby`` CDSE
promises no order; this catalogue then sorts by ``ContentDate/Start`` (ties by ``Id``), which
is one valid answer and keeps paging stable. Duplicate records are served as CDSE serves them.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request

if TYPE_CHECKING:
    from embedded_openeo.state import BackendState

DEFAULT_TOP = 20
MAX_TOP = 1000
MAX_SKIP = 10000
FIELD_TYPES: dict[str, type] = {
    "ContentDate/Start": datetime,
    "ContentDate/End": datetime,
    "BurstId": int,
    "AbsoluteBurstId": int,
    "RelativeOrbitNumber": int,
    "DatatakeID": int,
    "SwathIdentifier": str,
    "PolarisationChannels": str,
    "OrbitDirection": str,
    "ParentProductName": str,
    "ParentProductType": str,
    "ParentProductId": str,
    "PlatformSerialIdentifier": str,
    "OperationalMode": str,
}
ORDERABLE_FIELDS = ("ContentDate/Start", "ContentDate/End")
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<open>\() | (?P<close>\)) |
        (?P<string>'(?:[^']|'')*') |
        (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?) |
        (?P<integer>-?\d+(?![\d.])) |
        (?P<name>[A-Za-z_][\w.]*(?:/[A-Za-z_]\w*)*) |
        (?P<other>[^\s()]+)
    )""",
    re.VERBOSE,
)


class ODataQueryError(ValueError):
    """A query the catalogue refuses, with the status and ``detail`` CDSE would answer."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Comparison:
    """``field operator value``, e.g. ``BurstId eq 30343``."""

    field: str
    operator: str
    value: int | str | datetime

    def holds_for(self, record: dict) -> bool:
        value = _field_value(record, self.field)
        if FIELD_TYPES[self.field] is datetime:
            value = datetime.fromisoformat(value)
        return OPERATORS[self.operator](value, self.value)


def parse_filter(text: str) -> list[Comparison]:
    """The comparisons of an ``and``-joined OData filter; ``ODataQueryError`` (400) names what is unsupported."""
    if not text.strip():
        return []
    parser = _FilterParser(_tokens(text))
    comparisons = parser.conjunction()
    if parser.peek() is not None:
        parser.fail_at(parser.peek())
    return comparisons


def odata_error(status: int, detail: Any) -> Response:
    """An error in CDSE's catalogue format: ``{"detail": ...}``."""
    response = jsonify({"detail": detail})
    response.status_code = status
    return response


def create_catalogue_blueprint(state: BackendState) -> Blueprint:
    """The ``Bursts`` entity set; register it at ``/odata/v1``."""
    blueprint = Blueprint("catalogue", __name__)

    @blueprint.errorhandler(ODataQueryError)
    def refuse(error: ODataQueryError) -> Response:
        return odata_error(error.status, error.detail)

    @blueprint.get("/Bursts")
    def bursts() -> Response:
        comparisons = parse_filter(request.args.get("$filter", ""))
        top = _bounded_int("$top", DEFAULT_TOP, MAX_TOP)
        skip = _bounded_int("$skip", 0, MAX_SKIP)
        order_field, descending = _order(request.args.get("$orderby"))
        burst_ids = {c.value for c in comparisons if c.field == "BurstId" and c.operator == "eq"}
        if not burst_ids:
            raise ODataQueryError(
                400,
                "this catalogue answers only queries that constrain the burst: add `BurstId eq <id>` to $filter "
                "(a query without it would list the whole world's bursts)",
            )
        records = []
        if len(burst_ids) == 1:
            start, end = _content_start_bounds(comparisons)
            candidates = state.archive.search(burst_ids.pop(), start, end)
            records = [record for record in candidates if all(c.holds_for(record) for c in comparisons)]
        records.sort(key=lambda record: (_field_value(record, order_field), record["Id"]), reverse=descending)
        body: dict[str, Any] = {"@odata.context": "$metadata#Bursts"}
        if request.args.get("$count", "").lower() == "true":
            body["@odata.count"] = len(records)
        body["value"] = records[skip : skip + top]
        next_skip = skip + top
        if top > 0 and next_skip < len(records) and next_skip <= MAX_SKIP:
            body["@odata.nextLink"] = (
                f"{request.base_url}?{urlencode({**request.args.to_dict(), '$skip': str(next_skip)})}"
            )
        return jsonify(body)

    return blueprint


class _FilterParser:
    """Recursive descent over ``conjunction := term ('and' term)*``, ``term := '(' conjunction ')' | comparison``.

    Our own on purpose: no well-kept Python OData library parses ``$filter`` without bringing a
    server framework or an ORM with it, and this grammar is the one shape a burst client sends;
    what lies outside it must be a 400 naming it, not a silently wider query.
    """

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self._tokens = tokens
        self._position = 0

    def peek(self) -> tuple[str, str] | None:
        return self._tokens[self._position] if self._position < len(self._tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ODataQueryError(400, "invalid $filter: it ends where a comparison or ')' should follow")
        self._position += 1
        return token

    def fail_at(self, token: tuple[str, str]) -> NoReturn:
        kind, text = token
        if kind == "name" and text in {"or", "not"}:
            raise ODataQueryError(
                400, f"unsupported $filter operator {text!r}: only 'and' joins comparisons here"
            )
        raise ODataQueryError(400, f"invalid $filter: unexpected {text!r}")

    def conjunction(self) -> list[Comparison]:
        comparisons = self.term()
        while self.peek() == ("name", "and"):
            self.take()
            comparisons += self.term()
        return comparisons

    def term(self) -> list[Comparison]:
        kind, text = self.take()
        if kind == "open":
            comparisons = self.conjunction()
            following = self.peek()
            if following is None:
                raise ODataQueryError(400, "invalid $filter: a '(' is not closed")
            if following != ("close", ")"):
                self.fail_at(following)
            self.take()
            return comparisons
        if kind != "name" or text in {"or", "not", "and"}:
            self.fail_at((kind, text))
        if self.peek() == ("open", "("):
            raise ODataQueryError(
                400, f"unsupported $filter function {text}(...): only comparisons are supported"
            )
        if text not in FIELD_TYPES:
            raise ODataQueryError(
                400, f"unsupported $filter property {text!r}; supported properties are {sorted(FIELD_TYPES)}"
            )
        operator_kind, operator_text = self.take()
        if operator_kind != "name" or operator_text not in OPERATORS:
            raise ODataQueryError(
                400,
                f"unsupported $filter operator {operator_text!r} after {text}; supported are {sorted(OPERATORS)}",
            )
        return [Comparison(text, operator_text, _literal(text, self.take()))]


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens = []
    for match in _TOKEN.finditer(text):
        if match.lastgroup is not None:
            tokens.append((match.lastgroup, match.group(match.lastgroup)))
    return tokens


def _literal(field: str, token: tuple[str, str]) -> int | str | datetime:
    """The token as a value of the field's type: quoted string, integer, or unquoted ISO date/datetime."""
    kind, text = token
    expected = FIELD_TYPES[field]
    if expected is str and kind == "string":
        return text[1:-1].replace("''", "'")
    if expected is int and kind == "integer":
        return int(text)
    if expected is datetime and kind == "datetime":
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    examples = {str: "'IW2'", int: "30343", datetime: "2023-07-01T00:00:00.000Z"}
    raise ODataQueryError(
        400, f"invalid $filter value {text!r} for {field}: expected a literal like {examples[expected]}"
    )


def _bounded_int(name: str, default: int, maximum: int) -> int:
    """A paging option, refused with CDSE's 422 validation body when not an integer in ``[0, maximum]``."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        message = "Input should be a valid integer, unable to parse string as an integer"
        raise ODataQueryError(422, [_validation_error("int_parsing", name, raw, message)]) from None
    if value < 0:
        message = "Input should be greater than or equal to 0"
        raise ODataQueryError(422, [_validation_error("greater_than_equal", name, raw, message, {"ge": 0})])
    if value > maximum:
        message = f"Input should be less than or equal to {maximum}"
        raise ODataQueryError(
            422, [_validation_error("less_than_equal", name, raw, message, {"le": maximum})]
        )
    return value


def _validation_error(kind: str, name: str, raw: str, message: str, context: dict | None = None) -> dict:
    """One entry of the FastAPI-style ``detail`` list that CDSE answers for invalid query options."""
    error: dict[str, Any] = {"type": kind, "loc": ["query", name], "msg": message, "input": raw}
    if context is not None:
        error["ctx"] = context
    return error


def _order(text: str | None) -> tuple[str, bool]:
    """``(field, descending)`` from ``$orderby``; ascending by ``ContentDate/Start`` when absent."""
    if text is None:
        return "ContentDate/Start", False
    match = re.fullmatch(r"\s*(\S+)(?:\s+(asc|desc))?\s*", text)
    if match is None or match.group(1) not in ORDERABLE_FIELDS:
        raise ODataQueryError(
            400, f"unsupported $orderby {text!r}: use one of {list(ORDERABLE_FIELDS)} with 'asc' or 'desc'"
        )
    return match.group(1), match.group(2) == "desc"


def _content_start_bounds(comparisons: list[Comparison]) -> tuple[datetime | None, datetime | None]:
    """The tightest ``ContentDate/Start`` range the comparisons allow, so the archive generates no more."""
    start: datetime | None = None
    end: datetime | None = None
    for comparison in comparisons:
        if comparison.field != "ContentDate/Start":
            continue
        value = comparison.value
        assert isinstance(value, datetime)
        if comparison.operator in {"gt", "ge", "eq"}:
            start = value if start is None else max(start, value)
        if comparison.operator in {"lt", "le", "eq"}:
            end = value if end is None else min(end, value)
    return start, end


def _field_value(record: dict, field: str) -> Any:
    """``record["ContentDate"]["Start"]`` for ``ContentDate/Start``."""
    value: Any = record
    for part in field.split("/"):
        value = value[part]
    return value
