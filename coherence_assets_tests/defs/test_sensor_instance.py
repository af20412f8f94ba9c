"""``sensor_instance``: ticks evaluated as the code server evaluates them (from the daemon's
``InstanceRef``) share one open instance, which still sees what happened since the last tick; a tick
given an instance uses it."""

import dagster as dg
import pytest

from coherence_assets.defs.asset_keys import COHERENCE_RASTERS
from coherence_assets.defs.sensor_instance import tick_instance
from coherence_assets.defs.sensors import coherence_cube_sensor


@pytest.mark.slow  # a fresh SQLite instance: 4 s on this shared machine
def test_ticks_from_the_daemons_instance_ref_reuse_one_instance_that_sees_new_materialisations(
    tmp_path, monkeypatch
):
    opened = []  # every instance opened from a reference (each cost ~65 ms of CPU on SQLite)
    open_from_ref = dg.DagsterInstance.from_ref
    monkeypatch.setattr(dg.DagsterInstance, "from_ref", lambda ref: opened.append(ref) or open_from_ref(ref))
    with dg.instance_for_test(temp_dir=str(tmp_path)) as daemon_instance:
        ref = daemon_instance.get_ref()

        def tick() -> tuple[dg.SensorResult | dg.SkipReason, dg.DagsterInstance]:
            with dg.build_sensor_context(instance_ref=ref) as context:
                return coherence_cube_sensor(context), tick_instance(context)

        idle, first_instance = tick()
        daemon_instance.report_runless_asset_event(
            dg.AssetMaterialization(COHERENCE_RASTERS, partition="t015_030343_iw2|2023-07-01")
        )
        busy, second_instance = tick()
        with dg.build_sensor_context(instance=daemon_instance) as in_process:  # the demo's and tests' ticks
            assert tick_instance(in_process) is daemon_instance

    assert isinstance(idle, dg.SkipReason)
    assert len(opened) == 1
    assert second_instance is first_instance
    assert first_instance is not daemon_instance  # opened from the reference, as in the code server
    assert isinstance(busy, dg.SensorResult)
    assert [request.partition_key for request in busy.run_requests] == ["t015_030343_iw2"]
