"""The OData ``Bursts`` endpoint, answering like CDSE's for the queries a burst-pair client makes.

Supported: ``$filter`` with comparisons (``eq ne gt ge lt le``) of record properties to literals,
joined by ``and``, ``or`` and ``not`` and parenthesised as CDSE's catalogue documents them, and
CDSE's geographic filter ``OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((...))')``
(``MULTIPOLYGON`` too; the older ``location=Footprint,`` argument is accepted), which finds every
burst whose footprint intersects the area; ``$top`` (default 20, at most 1000); ``$skip`` (at most
10000); ``$orderby`` on ``ContentDate/Start`` or ``ContentDate/End``; ``$count=true``;
``@odata.nextLink`` paging. Anything else in a filter is a 400 that names it, so a client never
mistakes an ignored condition for an empty answer. Without ``$orderby`` CDSE promises no order; this
catalogue then sorts by ``ContentDate/Start`` (ties by ``Id``), which is one valid answer and keeps
paging stable. Duplicate records are served as CDSE serves them.

A query must constrain the bursts (``BurstId eq`` or ``OData.CSC.Intersects`` on every branch of an
``or``): the archive is generated on demand, and the whole world's records cannot be.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn, Protocol
from urllib.parse import urlencode

import shapely
from flask import Blueprint, Response, jsonify, request
from shapely.geometry import shape

from coherence_assets.cdse_facts import IW_SUBSWATHS

if TYPE_CHECKING:
    from embedded_openeo.burst_registry import BurstRegistry
    from embedded_openeo.state import BackendState

DEFAULT_TOP = 20
MAX_TOP = 1000
MAX_SKIP = 10000
# An area that touches more bursts than this is refused: each burst's records are generated on
# demand, and a continent's would take minutes (CDSE answers it; the stand-in says so in one line).
MAX_BURSTS_PER_QUERY = 2000
INTERSECTS_FUNCTION = "OData.CSC.Intersects"
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
_KEYWORDS = {"and", "or", "not"}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<open>\() | (?P<close>\)) | (?P<comma>,) | (?P<equals>=) |
        (?P<string>'(?:[^']|'')*') |
        (?P<geography>geography'[^']*') |
        (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?) |
        (?P<integer>-?\d+(?![\d.])) |
        (?P<name>[A-Za-z_][\w.]*(?:/[A-Za-z_]\w*)*) |
        (?P<other>[^\s(),=]+)
    )""",
    re.VERBOSE,
)
_GEOGRAPHY = re.compile(r"^geography'SRID=(?P<srid>\d+);(?P<wkt>.+)'$", re.DOTALL)

StartBounds = tuple[datetime | None, datetime | None]
BurstSet = set[tuple[int, str]]


class ODataQueryError(ValueError):
    """A query the catalogue refuses, with the status and ``detail`` CDSE would answer."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Condition(Protocol):
    """One node of a parsed ``$filter``."""

    def holds_for(self, record: dict) -> bool:
        """Whether a catalogue record satisfies the condition."""
        ...

    def bursts(self, registry: BurstRegistry) -> BurstSet | None:
        """The (burst id, subswath) pairs a matching record can have; ``None`` when unconstrained."""
        ...

    def start_bounds(self) -> StartBounds:
        """The ``ContentDate/Start`` range that holds every matching record (``None``: open end)."""
        ...


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

    def bursts(self, registry: BurstRegistry) -> BurstSet | None:
        if self.field == "BurstId" and self.operator == "eq":
            assert isinstance(self.value, int)
            return {(self.value, subswath) for subswath in IW_SUBSWATHS}
        return None

    def start_bounds(self) -> StartBounds:
        if self.field != "ContentDate/Start":
            return None, None
        assert isinstance(self.value, datetime)
        start = self.value if self.operator in {"gt", "ge", "eq"} else None
        end = self.value if self.operator in {"lt", "le", "eq"} else None
        return start, end


@dataclass(frozen=True)
class Intersects:
    """``OData.CSC.Intersects(area=geography'SRID=4326;...')``: the record's footprint meets the area."""

    area: shapely.Geometry
    _verdicts: dict[tuple[int, str], bool] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    def holds_for(self, record: dict) -> bool:
        key = (record["BurstId"], record["SwathIdentifier"])
        if key not in self._verdicts:
            self._verdicts[key] = shape(record["GeoFootprint"]).intersects(self.area)
        return self._verdicts[key]

    def bursts(self, registry: BurstRegistry) -> BurstSet | None:
        return set(registry.bursts_intersecting(self.area))

    def start_bounds(self) -> StartBounds:
        return None, None


@dataclass(frozen=True)
class Not:
    operand: Condition

    def holds_for(self, record: dict) -> bool:
        return not self.operand.holds_for(record)

    def bursts(self, registry: BurstRegistry) -> BurstSet | None:
        return None

    def start_bounds(self) -> StartBounds:
        return None, None


@dataclass(frozen=True)
class AllOf:
    """``a and b and ...``"""

    operands: tuple[Condition, ...]

    def holds_for(self, record: dict) -> bool:
        return all(operand.holds_for(record) for operand in self.operands)

    def bursts(self, registry: BurstRegistry) -> BurstSet | None:
        constrained = [found for operand in self.operands if (found := operand.bursts(registry)) is not None]
        return set.intersection(*constrained) if constrained else None

    def start_bounds(self) -> StartBounds:
        bounds = [operand.start_bounds() for operand in self.operands]
        starts = [start for start, _ in bounds if start is not None]
        ends = [end for _, end in bounds if end is not None]
        return (max(starts) if starts else None), (min(ends) if ends else None)


@dataclass(frozen=True)
class AnyOf:
    """``a or b or ...``"""

    operands: tuple[Condition, ...]

    def holds_for(self, record: dict) -> bool:
        return any(operand.holds_for(record) for operand in self.operands)

    def bursts(self, registry: BurstRegistry) -> BurstSet | None:
        found: BurstSet = set()
        for operand in self.operands:
            bursts = operand.bursts(registry)
            if bursts is None:
                return None
            found |= bursts
        return found

    def start_bounds(self) -> StartBounds:
        bounds = [operand.start_bounds() for operand in self.operands]
        starts, ends = [start for start, _ in bounds], [end for _, end in bounds]
        return (
            None if None in starts else min(s for s in starts if s is not None),
            None if None in ends else max(e for e in ends if e is not None),
        )


def parse_filter(text: str) -> Condition | None:
    """The condition of an OData ``$filter`` (``None`` when empty); ``ODataQueryError`` (400) names what is unsupported."""
    if not text.strip():
        return None
    parser = _FilterParser(_tokens(text))
    condition = parser.disjunction()
    if parser.peek() is not None:
        parser.fail_at(parser.peek())
    return condition


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
        condition = parse_filter(request.args.get("$filter", ""))
        top = _bounded_int("$top", DEFAULT_TOP, MAX_TOP)
        skip = _bounded_int("$skip", 0, MAX_SKIP)
        order_field, descending = _order(request.args.get("$orderby"))
        records = matching_records(state, condition)
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


def matching_records(state: BackendState, condition: Condition | None) -> list[dict]:
    """Every archive record that satisfies the condition, generated only for the bursts it allows."""
    candidates = None if condition is None else condition.bursts(state.bursts)
    if candidates is None or condition is None:
        raise ODataQueryError(
            400,
            "this catalogue answers only queries that constrain the burst: add `BurstId eq <id>` or "
            f"`{INTERSECTS_FUNCTION}(area=geography'SRID=4326;POLYGON((...))')` to $filter, on every side of "
            "an 'or' (a query without it would list the whole world's bursts)",
        )
    if len(candidates) > MAX_BURSTS_PER_QUERY:
        raise ODataQueryError(
            400,
            f"the area touches {len(candidates)} bursts; the embedded catalogue answers at most "
            f"{MAX_BURSTS_PER_QUERY} per query: split the area",
        )
    start, end = condition.start_bounds()
    records = []
    for burst_id, subswath in sorted(candidates):
        for record in state.archive.search(burst_id, start, end, subswaths=(subswath,)):
            if condition.holds_for(record):
                records.append(record)
    return records


class _FilterParser:
    """Recursive descent over OData's boolean grammar, as far as the ``Bursts`` properties need it::

        disjunction := conjunction ('or' conjunction)*
        conjunction := unary ('and' unary)*
        unary       := 'not' unary | '(' disjunction ')' | intersects | comparison
        intersects  := 'OData.CSC.Intersects' '(' ['location' '=' 'Footprint' ','] 'area' '=' geography ')'

    Our own on purpose: no well-kept Python OData library parses ``$filter`` without bringing a
    server framework or an ORM with it, and what lies outside this grammar must be a 400 naming
    it, not a silently wider query.
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

    def expect(self, expected: tuple[str, str], context: str) -> None:
        token = self.take()
        if token != expected:
            raise ODataQueryError(
                400, f"invalid $filter: expected {expected[1]!r} {context}, got {token[1]!r}"
            )

    def fail_at(self, token: tuple[str, str]) -> NoReturn:
        raise ODataQueryError(400, f"invalid $filter: unexpected {token[1]!r}")

    def disjunction(self) -> Condition:
        operands = [self.conjunction()]
        while self.peek() == ("name", "or"):
            self.take()
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else AnyOf(tuple(operands))

    def conjunction(self) -> Condition:
        operands = [self.unary()]
        while self.peek() == ("name", "and"):
            self.take()
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else AllOf(tuple(operands))

    def unary(self) -> Condition:
        kind, text = self.take()
        if (kind, text) == ("name", "not"):
            return Not(self.unary())
        if kind == "open":
            condition = self.disjunction()
            following = self.peek()
            if following is None:
                raise ODataQueryError(400, "invalid $filter: a '(' is not closed")
            if following != ("close", ")"):
                self.fail_at(following)
            self.take()
            return condition
        if kind != "name" or text in _KEYWORDS:
            self.fail_at((kind, text))
        if self.peek() == ("open", "("):
            if text != INTERSECTS_FUNCTION:
                raise ODataQueryError(
                    400,
                    f"unsupported $filter function {text}(...): the only function here is "
                    f"{INTERSECTS_FUNCTION}(area=geography'SRID=4326;POLYGON((...))')",
                )
            return self.intersects()
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
        return Comparison(text, operator_text, _literal(text, self.take()))

    def intersects(self) -> Intersects:
        context = f"in {INTERSECTS_FUNCTION}(area=geography'SRID=4326;POLYGON((...))')"
        self.expect(("open", "("), context)
        if self.peek() == ("name", "location"):
            self.take()
            self.expect(("equals", "="), context)
            self.expect(("name", "Footprint"), context)
            self.expect(("comma", ","), context)
        self.expect(("name", "area"), context)
        self.expect(("equals", "="), context)
        kind, text = self.take()
        if kind != "geography":
            raise ODataQueryError(
                400, f"invalid $filter: expected geography'SRID=4326;...' {context}, got {text!r}"
            )
        self.expect(("close", ")"), context)
        return Intersects(_area(text))


def _area(literal: str) -> shapely.Geometry:
    """The polygon or multipolygon of a ``geography'SRID=4326;WKT'`` literal, in longitude/latitude."""
    match = _GEOGRAPHY.match(literal)
    if match is None or match.group("srid") != "4326":
        raise ODataQueryError(
            400, f"invalid geography {literal!r}: expected geography'SRID=4326;POLYGON((lon lat, ...))'"
        )
    try:
        area = shapely.from_wkt(match.group("wkt"))
    except shapely.errors.GEOSException as error:
        raise ODataQueryError(400, f"invalid geography {literal!r}: {error}") from None
    if area.geom_type not in ("Polygon", "MultiPolygon") or area.is_empty:
        raise ODataQueryError(
            400,
            f"invalid geography {literal!r}: the area must be a POLYGON or MULTIPOLYGON, got {area.geom_type}",
        )
    west, south, east, north = area.bounds
    if west < -180 or east > 180 or south < -90 or north > 90:
        raise ODataQueryError(
            400,
            f"invalid geography {literal!r}: coordinates must be longitude, latitude in degrees (SRID 4326)",
        )
    return area


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


def _field_value(record: dict, field: str) -> Any:
    """``record["ContentDate"]["Start"]`` for ``ContentDate/Start``."""
    value: Any = record
    for part in field.split("/"):
        value = value[part]
    return value
