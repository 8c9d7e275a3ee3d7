"""Degraded modes the settings (or a fallback taken at run time) put into effect.

Each is one sentence every search and ingest result carries, so nobody takes a
degraded answer for a full one.
"""

from __future__ import annotations

from surveil.config import Settings

MOTION = "motion"


def degraded_modes(settings: Settings, *, detector_name: str | None) -> tuple[str, ...]:
    """Warnings for the configured models; `detector_name` is the detector actually built."""
    out: list[str] = []
    if settings.detector.backend == MOTION:
        out.append(
            "motion detector in use (detector.backend: motion): labels are 'motion', "
            "the person space and vehicle labels are not used"
        )
    elif detector_name == MOTION:
        out.append(
            "YOLO could not load; the motion fallback is in use (detector.fallback_to_motion): "
            "labels are 'motion', the person space and vehicle labels are not used; "
            "fix detector.weights"
        )
    person = settings.embedders.person
    if person.backend == "torchvision":
        out.append(
            f"persons are embedded by a general ImageNet CNN ({person.arch}), not a re-ID "
            "model (embedders.person.backend: torchvision): person matches are less reliable"
        )
    return tuple(out)
