"""The catalogue client against the embedded OData server over real HTTP."""

import datetime as dt

import pytest

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.catalogue.odata_client import BurstCatalogueClient, CatalogueError, bursts_filter
from coherence_assets.http_session import retrying_session

BURST = BurstKey(relative_orbit=15, burst_id=30343, subswath="IW2")
START = dt.datetime(2023, 7, 1, tzinfo=dt.UTC)
END = dt.datetime(2023, 10, 12, 23, 59, 59, tzinfo=dt.UTC)


def fast_client(url: str, attempts: int = 3) -> BurstCatalogueClient:
    return BurstCatalogueClient(
        url, session=retrying_session(attempts=attempts, backoff_seconds=0.01), timeout_seconds=2
    )


def test_filter_names_every_field_the_seed_filters_on():
    text = bursts_filter(BURST, "VV", START, END)
    assert text == (
        "ContentDate/Start ge 2023-07-01T00:00:00.000Z and ContentDate/Start le 2023-10-12T23:59:59.000Z"
        " and PolarisationChannels eq 'VV' and BurstId eq 30343 and SwathIdentifier eq 'IW2'"
        " and RelativeOrbitNumber eq 15"
    )


def test_search_follows_next_links_across_pages(backend, monkeypatch):
    monkeypatch.setattr("coherence_assets.catalogue.odata_client.PAGE_SIZE", 7)
    start, end = dt.datetime(2022, 1, 1, tzinfo=dt.UTC), dt.datetime(2023, 12, 31, tzinfo=dt.UTC)
    paged = fast_client(backend.catalogue_url).search(BURST, "VV", start, end)
    assert len(paged) > 3 * 7
    monkeypatch.setattr("coherence_assets.catalogue.odata_client.PAGE_SIZE", 1000)
    whole = fast_client(backend.catalogue_url).search(BURST, "VV", start, end)
    assert [a.record_id for a in paged] == [a.record_id for a in whole]
    assert [a.start for a in paged] == sorted(a.start for a in paged)
    assert {a.burst_id for a in paged} == {30343} and {a.polarisation for a in paged} == {"VV"}


def test_two_year_archive_has_duplicates_and_gaps(backend):
    start, end = dt.datetime(2022, 1, 1, tzinfo=dt.UTC), dt.datetime(2023, 12, 31, tzinfo=dt.UTC)
    records = fast_client(backend.catalogue_url).search(BURST, "VV", start, end)
    dates = [record.date for record in records]
    assert len(dates) > len(set(dates)), "expected duplicate records of a date from overlapping products"
    expected_cycle = (end - start).days // 12 + 1
    assert 0.85 * expected_cycle <= len(set(dates)) < expected_cycle


def test_429_with_retry_after_then_success(backend):
    backend.add_fault(path="/odata/v1/Bursts", status=429, retry_after=1, times=2)
    started = dt.datetime.now()
    records = fast_client(backend.catalogue_url).search(BURST, "VV", START, END)
    assert records
    assert (dt.datetime.now() - started).total_seconds() >= 2, "Retry-After of 1 s twice was not honoured"


def test_500s_exhaust_retries_with_a_clear_error(backend):
    backend.add_fault(path="/odata/v1/Bursts", status=500)
    with pytest.raises(CatalogueError, match=r"kept failing after retries.*try again later"):
        fast_client(backend.catalogue_url, attempts=2).search(BURST, "VV", START, END)


def test_timeout_is_retried_then_reported(backend):
    backend.add_fault(path="/odata/v1/Bursts", delay_seconds=3)
    with pytest.raises(CatalogueError, match="did not answer"):
        fast_client(backend.catalogue_url, attempts=1).search(BURST, "VV", START, END)


def test_answers_that_are_not_json_are_retried_like_5xx_then_succeed(backend, caplog):
    expected = fast_client(backend.catalogue_url).search(BURST, "VV", START, END)
    backend.add_fault(kind="malformed_answer", path="/odata/v1/Bursts", times=2)

    records = fast_client(backend.catalogue_url, attempts=2).search(BURST, "VV", START, END)

    assert records == expected and records
    retried = [record for record in caplog.records if "not JSON; retrying" in record.getMessage()]
    assert len(retried) == 2


def test_answers_that_stay_malformed_name_the_url_after_retries(backend):
    backend.add_fault(kind="malformed_answer", path="/odata/v1/Bursts")
    with pytest.raises(
        CatalogueError,
        match=r"catalogue http://127\.0\.0\.1:\d+/odata/v1/Bursts\?.* kept sending malformed answers "
        r"\(not JSON\) after retries: .* answered 3 time\(s\)",
    ):
        fast_client(backend.catalogue_url, attempts=2).search(BURST, "VV", START, END)


def test_json_without_records_is_refused(backend):
    with pytest.raises(CatalogueError, match="without a 'value' list"):
        fast_client(f"{backend.url}/.well-known/openeo#").search(BURST, "VV", START, END)


def test_empty_window_returns_no_records(backend):
    old = dt.datetime(2014, 1, 1, tzinfo=dt.UTC), dt.datetime(2014, 3, 31, tzinfo=dt.UTC)
    assert fast_client(backend.catalogue_url).search(BURST, "VV", *old) == []
