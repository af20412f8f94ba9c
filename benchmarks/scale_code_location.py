"""The code location of ``scale_backfill.py``'s code server and floor: the project's definitions, with the
``coherence`` resource asking the embedded backend's stand-in of GitHub's API (not api.github.com) which
commit APEx's main is at, as the local resources do (this machine has no internet).

It imports what a deployment's code location imports and nothing more: each run worker loads it again,
so a benchmark module imported here (the embedded backend, pandas, openeo) would be counted in every run.
"""

import os

import dagster as dg

import coherence_assets.definitions as project_module
from coherence_assets.settings import LOCAL_GITHUB_API_PATH

project = project_module.defs
coherence = project.resources["coherence"]
github_api_url = f"{os.environ['OPENEO_BACKEND_URL']}{LOCAL_GITHUB_API_PATH}"
defs = dg.Definitions(
    assets=project.assets,
    jobs=project.jobs,
    sensors=project.sensors,
    schedules=project.schedules,
    executor=project.executor,
    resources={
        **project.resources,
        "coherence": type(coherence)(**{**coherence.model_dump(), "github_api_url": github_api_url}),
    },
)
del project, coherence  # Dagster takes the module's one Definitions
