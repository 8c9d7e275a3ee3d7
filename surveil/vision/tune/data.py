"""What a tuning run learns from: crops grouped by identity, and which identities differ.

Sources: the site's catalog (storage/tune_data.py: a track's appearances are one identity,
tracks seen in one keyframe are different people, operator-confirmed matches join
tracks), a folder of labelled crops (one sub-folder per identity), or MOT ground truth
(benchmarks and tests). All of them end as one `TrainingSet`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from surveil.domain import Image, InputError
from surveil.vision.crops import read_image

__all__ = ["TrainingSet", "from_dir", "from_groups", "from_mot", "require_trainable"]

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass(frozen=True)
class TrainingSet:
    """Crops with an identity label each; `distinct` limits which identities are negatives."""

    crops: list[Image]
    labels: npt.NDArray[np.int64]
    #: Label pairs (low, high) known to be different people; None: every two labels differ
    #: (ground truth). Tracks of a site may be one person seen twice, so there only pairs
    #: seen together in one keyframe count as negatives.
    distinct: frozenset[tuple[int, int]] | None
    source: str
    #: A group key per crop (frame, keyframe): evaluation skips same-group matches.
    groups: npt.NDArray[np.int64] | None = None

    @property
    def identities(self) -> int:
        """How many identities have at least two crops (the ones that give positives)."""
        _, counts = np.unique(self.labels, return_counts=True)
        return int((counts >= 2).sum())


def from_groups(
    groups: Sequence[Sequence[Image]],
    *,
    distinct: Iterable[tuple[int, int]] | None,
    source: str,
    frames: Sequence[Sequence[int]] | None = None,
) -> TrainingSet:
    """A TrainingSet from crops listed per identity (identity = index in `groups`)."""
    crops = [crop for group in groups for crop in group]
    labels = np.repeat(np.arange(len(groups), dtype=np.int64), [len(g) for g in groups])
    pairs = None if distinct is None else frozenset((min(a, b), max(a, b)) for a, b in distinct)
    keys = None if frames is None else np.array([f for fs in frames for f in fs], np.int64)
    return TrainingSet(crops=crops, labels=labels, distinct=pairs, source=source, groups=keys)


def from_dir(root: Path) -> TrainingSet:
    """Labelled crops: one sub-folder per identity, image files inside (offline experiments)."""
    if not root.is_dir():
        raise InputError(f"--from-dir {root} is not a folder of identity sub-folders")
    groups: list[list[Image]] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
        if files:
            groups.append([read_image(p) for p in files])
    return from_groups(groups, distinct=None, source=f"folder {root}")


def _mot_boxes(
    seq: Path, min_visibility: float, min_height: float
) -> dict[int, list[tuple[int, tuple[float, float, float, float]]]]:
    boxes: dict[int, list[tuple[int, tuple[float, float, float, float]]]] = defaultdict(list)
    for line in (seq / "gt" / "gt.txt").read_text().splitlines():
        f, tid, x, y, w, h, consider, cls, vis = line.split(",")[:9]
        wanted = int(consider) == 1 and int(cls) == 1
        if wanted and float(vis) >= min_visibility and float(h) >= min_height:
            box = (float(x), float(y), float(x) + float(w), float(y) + float(h))
            boxes[int(f)].append((int(tid), box))
    return boxes


def _cut(image: Image, box: tuple[float, float, float, float], padding: float) -> Image:
    """The box grown by `padding` of its size on each side, as ingest cuts crops."""
    x1, y1, x2, y2 = box
    px, py = (x2 - x1) * padding, (y2 - y1) * padding
    h, w = image.shape[:2]
    left, top = max(0, int(x1 - px)), max(0, int(y1 - py))
    right, bottom = min(w, int(x2 + px)), min(h, int(y2 + py))
    return image[top:bottom, left:right].copy()


def from_mot(
    sequences: Sequence[Path],
    *,
    min_visibility: float = 0.3,
    min_height: float = 40.0,
    padding: float = 0.1,
    max_frames: int | None = None,
) -> TrainingSet:
    """MOT ground-truth pedestrians (class 1); identity = sequence + id, group = frame."""
    crops: dict[str, list[Image]] = defaultdict(list)
    frames: dict[str, list[int]] = defaultdict(list)
    for s, seq in enumerate(sequences):
        boxes = _mot_boxes(seq, min_visibility, min_height)
        images = sorted((seq / "img1").glob("*.jpg"))[:max_frames]
        for path in images:
            image = read_image(path)
            for ident, box in boxes.get(int(path.stem), []):
                crops[f"{seq.name}:{ident}"].append(_cut(image, box, padding))
                frames[f"{seq.name}:{ident}"].append(s * 100_000 + int(path.stem))
    keys = sorted(crops)
    names = ", ".join(p.name for p in sequences)
    return from_groups(
        [crops[k] for k in keys],
        distinct=None,
        source=f"MOT {names}",
        frames=[frames[k] for k in keys],
    )


def require_trainable(data: TrainingSet, *, min_identities: int = 2) -> None:
    """InputError (one line) unless there are positives and negatives to learn from."""
    if not data.crops:
        raise InputError(
            f"no tracks to learn from in {data.source}: ingest video with people first "
            "(or pass --from-dir with one folder of crops per identity)"
        )
    if data.identities < min_identities:
        raise InputError(
            f"too few identities in {data.source}: {data.identities} with 2+ crops, "
            f"need at least {min_identities}"
        )
    if data.distinct is not None and not data.distinct:
        raise InputError(
            f"no negatives in {data.source}: no two tracks were seen in one keyframe, so "
            "nothing says which people differ"
        )
