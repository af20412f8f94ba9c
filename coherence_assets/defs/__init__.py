"""The Dagster layer: partitions, resources, assets, sensors and schedules, each a thin shell over the domain modules."""
