"""Images the Dagster UI shows inline in an asset's metadata.

Dagster 1.13 renders a Markdown metadata value inline only when it is shorter than 1,000
characters; a longer one (any PNG as a data URL) hides behind "[Show Markdown]". So the image is
written into the instance's local compute-log folder, which the webserver serves at
``/logs/<namespace>/<name>/<extension>``, and the Markdown only links it. Each image's name
carries its content digest, so every materialisation keeps showing its own picture.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

UI_IMAGE_NAMESPACE = "coherence_quicklook"


def inline_image_markdown(instance: dg.DagsterInstance, name: str, png: bytes, title: str) -> str:
    """Markdown the UI shows inline; a data URL (behind "[Show Markdown]") when logs are not local."""
    manager = instance.compute_log_manager
    if not isinstance(manager, LocalComputeLogManager):
        from coherence_assets.cube.quicklook import quicklook_markdown  # matplotlib: not at definitions load

        return quicklook_markdown(png, title)
    file_base = f"{name}-{hashlib.sha256(png).hexdigest()[:12]}"
    path = Path(manager.get_captured_local_path([UI_IMAGE_NAMESPACE, file_base], "png"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return f"![{title}](/logs/{UI_IMAGE_NAMESPACE}/{file_base}/png)"
