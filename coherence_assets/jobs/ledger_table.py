"""The whole ledger of a partition as a Markdown table, for the ``coherence_job`` metadata in the UI.

A run's own additions say little on their own (a daily re-run adds nothing); the table shows every
job the partition ever had, so its latest materialisation tells the partition's story.
"""

from __future__ import annotations

import pandas as pd

from coherence_assets.jobs.ledger import Ledger
from coherence_assets.pairs.pair import Pair

NO_JOBS = "no jobs yet: the pair table was empty or every pair was covered elsewhere"


def ledger_markdown(ledger: Ledger) -> str:
    """One row per job, oldest first: id, status when this run ended, attempt, the job it replaces, its pairs.

    Few, narrow columns (process and parameters are metadata of their own): the UI shows Markdown
    inline only below 1,000 characters, which keeps about ten jobs in view.
    """
    if not ledger.jobs:
        return NO_JOBS
    rows = [
        {
            "job": job.job_id or f"(not created: {job.title})",
            "status at this run": job.status,
            "attempt": job.attempt,
            "replaces": job.replaces or "",
            "pairs": len(job.pairs),
            "reference dates": _date_range(job.pairs),
            "submitted": job.submitted_at[:16].replace("T", " "),
        }
        for job in ledger.jobs
    ]
    return pd.DataFrame(rows).to_markdown(index=False)


def _date_range(pairs: list[Pair]) -> str:
    if not pairs:
        return ""
    references = sorted(reference for reference, _ in pairs)
    first, last = references[0].isoformat(), references[-1].isoformat()
    return first if first == last else f"{first} .. {last}"
