"""``coherence_job`` metadata: the whole ledger after every materialisation, not just what it added."""

import pytest

from coherence_assets_tests.defs.conftest import Chain, materialization_metadata

pytestmark = pytest.mark.stand_in  # the ledger's rows come from a real submission


def test_a_rematerialisation_that_adds_nothing_still_shows_every_job_of_the_partition(chain: Chain):
    chain.refresh_bursts()
    chain.submit()
    (job,) = chain.ledger().jobs

    result = chain.submit()

    metadata = materialization_metadata(result, "coherence_job")
    assert metadata["submitted_jobs"] == 0
    table = metadata["ledger"].splitlines()
    assert [cell.strip() for cell in table[0].strip("|").split("|")][:3] == [
        "job",
        "status at this run",
        "attempt",
    ]
    (row,) = table[2:]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[0] == job.job_id
    assert cells[1] == chain.ledger().jobs[0].status
    assert cells[4] == str(len(job.pairs))
