"""The daily schedule: new acquisitions of the current window become new jobs."""

import dagster as dg

from coherence_assets.defs.jobs import submit_coherence_jobs
from coherence_assets.defs.partitions import burst_partitions, burst_window_key
from coherence_assets.defs.resources import CoherenceParameters
from coherence_assets.partition_keys import partition_key
from coherence_assets.windows import windows_still_growing

# CDSE lists a burst a day or two after acquisition; the previous window is refreshed this much longer
PUBLICATION_DELAY_DAYS = 3


@dg.schedule(
    job=submit_coherence_jobs,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily: refresh insar_pairs and submit coherence_job for the current window of every burst "
    "(and the previous one while its last pairs' secondaries are still being acquired)",
)
def current_window_schedule(
    context: dg.ScheduleEvaluationContext, coherence: CoherenceParameters
) -> list[dg.RunRequest] | dg.SkipReason:
    day = context.scheduled_execution_time.date()
    windows = windows_still_growing(day, coherence.longest_baseline_days, PUBLICATION_DELAY_DAYS)
    bursts = sorted(context.instance.get_dynamic_partitions(burst_partitions.name))
    if not bursts:
        return dg.SkipReason("no burst partitions yet: materialise burst_catalogue first")
    return [
        dg.RunRequest(
            partition_key=burst_window_key(burst, window),
            run_key=f"{partition_key(burst, window)}|{day:%Y-%m-%d}",
        )
        for window in windows
        for burst in bursts
    ]
