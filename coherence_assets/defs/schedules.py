"""The daily schedule: new acquisitions of the current window become new jobs."""

import dagster as dg

from coherence_assets.defs.jobs import submit_coherence_jobs
from coherence_assets.defs.partitions import burst_partitions, burst_window_key
from coherence_assets.windows import window_key_of


@dg.schedule(
    job=submit_coherence_jobs,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily: refresh insar_pairs and submit coherence_job for the current window of every burst",
)
def current_window_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    window = window_key_of(context.scheduled_execution_time.date())
    bursts = sorted(context.instance.get_dynamic_partitions(burst_partitions.name))
    if not bursts:
        return dg.SkipReason("no burst partitions yet: materialise burst_catalogue first")
    return [
        dg.RunRequest(
            partition_key=burst_window_key(burst, window),
            run_key=f"{burst}|{window}|{context.scheduled_execution_time:%Y-%m-%d}",
        )
        for burst in bursts
    ]
