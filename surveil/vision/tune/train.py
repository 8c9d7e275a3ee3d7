"""Metric learning on a site's crops: batch-hard triplets over P identities x K crops.

The loss pulls a crop's hardest positive closer than its hardest negative by a margin
(Hermans et al. 2017, "In Defense of the Triplet Loss"), plus a keep-close term to the
original model's vectors: a site gives a few hundred crops, and without it a few epochs
forget what the network learned from a hundred thousand. Early layers stay frozen: they
are generic, and not back-propagating through them makes a CPU step several times cheaper.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import structlog
import torch
import torch.nn.functional as F  # noqa: N812  (the usual name)

from surveil.domain import Image, InputError
from surveil.vision.embedder import preprocess, resize_batch
from surveil.vision.tune.data import TrainingSet
from surveil.vision.tune.graph import OnnxNet

__all__ = ["TuneOptions", "TuneResult", "train"]

log = structlog.get_logger(__name__)

#: Layer-name prefixes of OSNet, input to output: `train_from` picks where learning starts.
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc")


@dataclass(frozen=True)
class TuneOptions:
    """How one tuning run trains; defaults measured in benchmarks/bench_tune.py."""

    epochs: int = 8
    minutes: float | None = None
    ids_per_batch: int = 8
    crops_per_id: int = 4
    lr: float = 3e-4
    margin: float = 0.3
    keep_weight: float = 1.0
    train_from: str = "conv4"
    seed: int = 0
    height: int = 256
    width: int = 128

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise InputError(f"--epochs must be at least 1, got {self.epochs}")
        if self.minutes is not None and self.minutes <= 0:
            raise InputError(f"--minutes must be positive, got {self.minutes}")
        if self.train_from not in LAYERS:
            raise InputError(f"--train-from must be one of {', '.join(LAYERS)}")
        if self.ids_per_batch < 2 or self.crops_per_id < 2:
            raise InputError("a batch needs at least 2 identities x 2 crops each")


@dataclass(frozen=True)
class TuneResult:
    """What the training loop did."""

    steps: int
    epochs: float
    seconds: float
    first_loss: float
    last_loss: float
    stopped_by: str  # "epochs" or "minutes"


class _Sampler:
    """P identities x K crops per batch; with partial knowledge, negatives that are known."""

    def __init__(self, data: TrainingSet, options: TuneOptions) -> None:
        self._rng = np.random.default_rng(options.seed)
        self._p, self._k = options.ids_per_batch, options.crops_per_id
        self._members: dict[int, npt.NDArray[np.int64]] = {
            int(label): np.flatnonzero(data.labels == label) for label in np.unique(data.labels)
        }
        self._anchors = np.array([k for k, v in self._members.items() if len(v) >= 2])
        self._partners: dict[int, list[int]] = defaultdict(list)
        for a, b in data.distinct or ():
            self._partners[a].append(b)
            self._partners[b].append(a)
        self._known = data.distinct is not None

    def batch(self) -> npt.NDArray[np.int64]:
        """Crop indices of one batch, grouped by identity."""
        first = int(self._rng.choice(self._anchors))
        if self._known:  # identities seen beside the anchor: the only sure negatives
            pool = np.array(self._partners[first], dtype=np.int64)
        else:
            pool = self._anchors[self._anchors != first]
        others = self._rng.permutation(pool)[: self._p - 1]
        picks = []
        for label in [first, *others.tolist()]:
            members = self._members[int(label)]
            picks.append(self._rng.choice(members, self._k, replace=len(members) < self._k))
        return np.concatenate(picks)


def _distinct_matrix(labels: npt.NDArray[np.int64], data: TrainingSet) -> torch.Tensor:
    different = labels[:, None] != labels[None, :]
    if data.distinct is not None:
        known = np.array(
            [[(min(a, b), max(a, b)) in data.distinct for b in labels] for a in labels]
        )
        different &= known
    return torch.from_numpy(different)


def batch_hard_loss(
    emb: torch.Tensor, labels: torch.Tensor, negatives: torch.Tensor, margin: float
) -> torch.Tensor:
    """Mean over anchors of relu(hardest positive distance - hardest negative + margin)."""
    dist = (2.0 - 2.0 * emb @ emb.T).clamp(min=1e-12).sqrt()
    same = labels[:, None] == labels[None, :]
    same.fill_diagonal_(False)
    hardest_pos = dist.masked_fill(~same, 0.0).max(dim=1).values
    hardest_neg = dist.masked_fill(~negatives, math.inf).min(dim=1).values
    valid = same.any(dim=1) & negatives.any(dim=1)
    if not bool(valid.any()):
        return emb.sum() * 0.0
    return F.relu(hardest_pos - hardest_neg + margin)[valid].mean()


def _set_trainable(net: OnnxNet, train_from: str) -> int:
    frozen = LAYERS[: LAYERS.index(train_from)]
    count = 0
    for name, weight in net.named_weights().items():
        weight.requires_grad_(net.layer_of.get(name, "") not in frozen)
        count += weight.numel() if weight.requires_grad else 0
    return count


def _stem_cache(
    net: OnnxNet, views: Sequence[Sequence[Image]], cut: int, options: TuneOptions
) -> list[dict[str, torch.Tensor]]:
    """The frozen stem's output for every crop, per view (as is, mirrored), computed once.

    The stem never changes during training, so caching it makes a step cost only the
    layers that learn: on OSNet x0.25 from conv4 that is several times cheaper on a CPU.
    """
    out = []
    with torch.no_grad():
        for crops in views:
            parts: dict[str, list[torch.Tensor]] = defaultdict(list)
            for i in range(0, len(crops), 64):
                batch = preprocess(crops[i : i + 64], options.height, options.width)
                for name, value in net.stem(torch.from_numpy(batch), cut=cut).items():
                    parts[name].append(value)
            out.append({name: torch.cat(chunks) for name, chunks in parts.items()})
    return out


@dataclass(frozen=True)
class _Views:
    """Each crop as the learning layers see it (cached stem output) and its keep-close target.

    View 0 is the crop as is, view 1 its mirror image; a batch picks one view per crop.
    """

    cache: list[dict[str, torch.Tensor]]
    targets: torch.Tensor  # (2, crops, dim): the original model's vectors of both views
    cut: int

    def inputs(
        self, index: npt.NDArray[np.int64], flips: npt.NDArray[np.bool_]
    ) -> dict[str, torch.Tensor]:
        """The head's inputs for a batch, mirrored where `flips` says."""
        pick = torch.from_numpy(flips)
        return {
            name: torch.where(
                pick.view(-1, *[1] * (plain.dim() - 1)), self.cache[1][name][index], plain[index]
            )
            for name, plain in self.cache[0].items()
        }

    def target(self, index: npt.NDArray[np.int64], flips: npt.NDArray[np.bool_]) -> torch.Tensor:
        """The original model's vectors for a batch."""
        return self.targets[torch.from_numpy(flips.astype(np.int64)), torch.from_numpy(index)]


def _views(
    net: OnnxNet,
    data: TrainingSet,
    options: TuneOptions,
    reference: Callable[[Sequence[Image]], npt.NDArray[np.float32]],
) -> _Views:
    sized = list(resize_batch(data.crops, options.height, options.width))
    flipped = [crop[:, ::-1].copy() for crop in sized]
    targets = torch.from_numpy(np.stack([reference(sized), reference(flipped)]))
    cut = net.cut_before(options.train_from)
    return _Views(_stem_cache(net, [sized, flipped], cut, options), targets, cut)


def _batch_loss(
    net: OnnxNet,
    views: _Views,
    data: TrainingSet,
    options: TuneOptions,
    rng: np.random.Generator,
    index: npt.NDArray[np.int64],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(total loss, triplet part) of one batch of crop indices."""
    flips = rng.random(len(index)) < 0.5
    labels = data.labels[index]
    emb = F.normalize(net.head(views.inputs(index, flips), cut=views.cut), dim=1)
    negatives = _distinct_matrix(labels, data)
    triplet = batch_hard_loss(emb, torch.from_numpy(labels), negatives, options.margin)
    keep = ((emb - views.target(index, flips)) ** 2).sum(dim=1).mean()
    return triplet + options.keep_weight * keep, triplet


def train(
    net: OnnxNet,
    data: TrainingSet,
    options: TuneOptions,
    *,
    reference: Callable[[Sequence[Image]], npt.NDArray[np.float32]],
    progress: Callable[[int], None] | None = None,
) -> TuneResult:
    """Fine-tune `net` in place; `reference` embeds crops with the original model."""
    torch.manual_seed(options.seed)
    trainable = _set_trainable(net, options.train_from)
    views = _views(net, data, options, reference)
    params = [w for w in net.weights if w.requires_grad]
    optimiser = torch.optim.Adam(params, lr=options.lr, weight_decay=5e-4)
    sampler = _Sampler(data, options)
    per_epoch = max(1, math.ceil(len(data.crops) / (options.ids_per_batch * options.crops_per_id)))
    total = per_epoch * options.epochs
    rng = np.random.default_rng(options.seed + 1)
    deadline = None if options.minutes is None else time.monotonic() + options.minutes * 60
    started, losses, stopped_by = time.monotonic(), [], "epochs"
    log.info(
        "tune.start", crops=len(data.crops), steps=total, trainable=trainable, source=data.source
    )
    net.train()
    for step in range(total):
        if deadline is not None and time.monotonic() > deadline:
            stopped_by = "minutes"
            break
        loss, triplet = _batch_loss(net, views, data, options, rng, sampler.batch())
        optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        losses.append(float(loss.detach()))
        if step % per_epoch == 0:
            log.info(
                "tune.step",
                step=step,
                loss=round(losses[-1], 4),
                triplet=round(float(triplet.detach()), 4),
            )
        if progress is not None:
            progress(1)
    net.eval()
    if not losses:
        raise InputError("--minutes left no time for a single training step")
    return TuneResult(
        steps=len(losses),
        epochs=round(len(losses) / per_epoch, 2),
        seconds=round(time.monotonic() - started, 1),
        first_loss=round(float(np.mean(losses[:per_epoch])), 4),
        last_loss=round(float(np.mean(losses[-per_epoch:])), 4),
        stopped_by=stopped_by,
    )
