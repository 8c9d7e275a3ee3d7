"""The tuning loop's pure parts on worked examples: loss, sampling, metrics, input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from surveil.domain import InputError
from surveil.vision.tune.data import from_groups, require_trainable
from surveil.vision.tune.metrics import retrieval
from surveil.vision.tune.train import TuneOptions, _Sampler, batch_hard_loss


def _unit(*angles_deg: float) -> torch.Tensor:
    rad = torch.tensor(angles_deg) * math.pi / 180
    return torch.stack([torch.cos(rad), torch.sin(rad)], dim=1)


def test_batch_hard_takes_the_farthest_positive_and_nearest_negative() -> None:
    # Identity 0 at 0 and 60 degrees, identity 1 at 90 and 180: on the unit circle the
    # distance of an angle t is 2 sin(t/2).
    emb = _unit(0, 60, 90, 180)
    labels = torch.tensor([0, 0, 1, 1])
    negatives = labels[:, None] != labels[None, :]
    chord = [2 * math.sin(math.radians(t) / 2) for t in (60, 30, 90)]
    # anchor 0: pos 60, neg 90; anchor 1: pos 60, neg 30; anchor 2: pos 90, neg 30;
    # anchor 3: pos 90, neg 120.
    expected = [
        max(0, chord[0] - chord[2] + 0.3),
        max(0, chord[0] - chord[1] + 0.3),
        max(0, chord[2] - chord[1] + 0.3),
        max(0, chord[2] - 2 * math.sin(math.radians(60)) + 0.3),
    ]
    loss = batch_hard_loss(emb, labels, negatives, margin=0.3)
    assert float(loss) == pytest.approx(sum(expected) / 4, abs=1e-5)


def test_unknown_pairs_are_never_used_as_negatives() -> None:
    emb = _unit(0, 10, 20, 150)
    labels = torch.tensor([0, 0, 1, 2])
    # Only identities 0 and 2 are known to differ: 1 (at 20 degrees, close) is ignored.
    known = torch.tensor([[a != b and {a, b} == {0, 2} for b in labels] for a in labels])
    loss = batch_hard_loss(emb, labels, known, margin=0.3)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)  # 150 degrees is far enough
    loss_all = batch_hard_loss(emb, labels, labels[:, None] != labels[None, :], margin=0.3)
    assert float(loss_all) > 0.1


def test_sampler_with_partial_knowledge_pairs_only_tracks_seen_together() -> None:
    crops = [np.zeros((8, 4, 3), np.uint8)] * 2
    data = from_groups([crops] * 6, distinct=[(0, 1), (0, 2), (3, 4)], source="test")
    sampler = _Sampler(data, TuneOptions(ids_per_batch=4, crops_per_id=2, seed=3))
    partners = {0: {1, 2}, 1: {0}, 2: {0}, 3: {4}, 4: {3}}
    for _ in range(50):
        ids = [int(i) for i in dict.fromkeys(data.labels[sampler.batch()].tolist())]
        assert set(ids[1:]) <= partners.get(ids[0], set())


def test_retrieval_skips_the_query_frame_and_scores_ranks() -> None:
    # Query 0 (id 0) ranks: id 1 (0.9), id 0 (0.8) -> rank-1 miss, AP 1/2.
    vectors = np.array([[1, 0], [0.8, 0.6], [0.9, math.sqrt(1 - 0.81)]], np.float32)
    labels = np.array([0, 0, 1])
    result = retrieval(vectors, labels)
    # Query 1's only positive (crop 0) scores 0.8 against crop 2's ~0.98: also AP 1/2.
    assert result.queries == 2
    assert result.rank1 == pytest.approx(0.0)
    assert result.mean_ap == pytest.approx(0.5)
    same_frame = retrieval(vectors, labels, groups=np.array([0, 0, 1]))
    assert same_frame.queries == 0  # the only positive is in the query's own frame


@pytest.mark.parametrize(
    ("groups", "distinct", "message"),
    [
        ([], None, "no tracks to learn from"),
        ([[1, 2], [3]], None, "too few identities"),
        ([[1, 2], [3, 4]], [], "no negatives"),
    ],
)
def test_untrainable_sets_say_why_in_one_line(
    groups: list[list[int]], distinct: list[tuple[int, int]] | None, message: str
) -> None:
    images = [[np.full((8, 4, 3), v, np.uint8) for v in g] for g in groups]
    with pytest.raises(InputError, match=message) as caught:
        require_trainable(from_groups(images, distinct=distinct, source="test"))
    assert "\n" not in str(caught.value)


def test_options_refuse_nonsense() -> None:
    with pytest.raises(InputError, match="--epochs"):
        TuneOptions(epochs=0)
    with pytest.raises(InputError, match="--train-from"):
        TuneOptions(train_from="conv9")
