"""Why a job's pairs cannot progress without a person: a kind and its facts, worded only when shown.

The sensor keeps these in the jobs' ledger records and in the records of done partitions; the line a user reads
(``StuckReason.line``) is made from the facts, so that code asks the facts (which job, how many
tries, which pairs), never the words.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from coherence_assets.pairs.pair import Pair, summarise_pairs


class StuckKind(StrEnum):
    FAILED = "failed"  # the job failed at its last attempt: its pairs are given up
    CANCELED = "canceled"  # canceled on the backend: not resubmitted
    DOWNLOADS_FAILED = "downloads_failed"  # its download runs used their retries
    RESUBMITS_FAILED = "resubmits_failed"  # the runs that resubmit it used their retries
    LOST = "lost"  # no longer listed by the backend, after its last attempt
    WORDED = "worded"  # a line an earlier version kept as prose


@dataclass(frozen=True)
class StuckReason:
    """What cannot progress in a partition: ``tries`` counts the job's attempts (failed, lost) or the
    runs that failed (downloads, resubmissions); ``pairs`` are the pairs left without a raster."""

    kind: StuckKind
    job_id: str
    tries: int = 0
    pairs: tuple[Pair, ...] = ()
    words: str = ""  # WORDED only

    def line(self) -> str:
        """The reason and the remedy, in one line of reasonable length."""
        count, pairs = len(self.pairs), _pairs_text(list(self.pairs))
        job = f"job {self.job_id}"
        match self.kind:
            case StuckKind.FAILED:
                return (
                    f"{job} failed {self.tries} time(s), its {count} pair(s) are given up ({pairs}): read its "
                    "error logs on coherence_job, then re-materialise coherence_job with a higher max_attempts"
                )
            case StuckKind.CANCELED:
                return (
                    f"{job} was canceled on the backend; its {count} pair(s) have no raster: "
                    "re-materialise coherence_job to submit them again"
                )
            case StuckKind.DOWNLOADS_FAILED:
                return (
                    f"downloads of {job} failed {self.tries} time(s); {count} pair(s) have no raster ({pairs}): "
                    "the every_pair_has_a_raster check names the last error; fix it, then re-materialise "
                    "coherence_rasters for this partition"
                )
            case StuckKind.RESUBMITS_FAILED:
                return (
                    f"resubmitting {job} failed {self.tries} time(s) (see the resubmit_coherence_jobs runs); "
                    f"its {count} pair(s) have no job: re-materialise coherence_job once the cause is fixed"
                )
            case StuckKind.LOST:
                return (
                    f"{job} is no longer listed by the backend and had used its {self.tries} attempt(s); "
                    f"{count} pair(s) have no raster ({pairs}): re-materialise coherence_job with a higher "
                    "max_attempts"
                )
        return self.words

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "job_id": self.job_id,
            "tries": self.tries,
            "pairs": [[reference.isoformat(), secondary.isoformat()] for reference, secondary in self.pairs],
            **({"words": self.words} if self.words else {}),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any] | str) -> StuckReason:
        if isinstance(document, str):  # as earlier versions kept it: the line alone
            named = _JOB_IN_WORDS.search(document)
            return cls(StuckKind.WORDED, named.group(1) if named else "", words=document)
        return cls(
            StuckKind(document["kind"]),
            document["job_id"],
            document.get("tries", 0),
            tuple(
                (dt.date.fromisoformat(reference), dt.date.fromisoformat(secondary))
                for reference, secondary in document.get("pairs", ())
            ),
            document.get("words", ""),
        )


# every line of earlier versions named its job so: "job <id> ..." or "resubmitting job <id> ..."
_JOB_IN_WORDS = re.compile(r"\bjob (\S+) ")


def _pairs_text(pairs: list[Pair]) -> str:
    """The pairs of a stuck line: the first few; the every_pair_has_a_raster check lists them all."""
    return summarise_pairs(pairs) + (" (all in the every_pair_has_a_raster check)" if len(pairs) > 3 else "")
