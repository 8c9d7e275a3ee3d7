"""One tuning run end to end: measure, train, export as a new model, measure again.

The tuned model is a new file, hence a new model id (the id is the file's digest): it
is adopted only by pointing the space's weights at it and re-embedding the archive
(`surveil index reembed`), never by swapping vectors of two models in one space.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from surveil.config import EmbedderSettings
from surveil.domain import ConfigError, Space
from surveil.vision.device import choose_device, configure_torch_threads
from surveil.vision.embedder import OnnxEmbedder
from surveil.vision.tune.data import TrainingSet, require_trainable
from surveil.vision.tune.graph import export_onnx, load_onnx_net
from surveil.vision.tune.metrics import Retrieval, retrieval
from surveil.vision.tune.train import TuneOptions, TuneResult, train

__all__ = ["TuneReport", "adopt_hint", "tune_embedder"]


@dataclass(frozen=True)
class TuneReport:
    """What a run produced and how it scored (held-out figures only when a set was given)."""

    space: str
    base_model: str
    model: str
    path: str
    source: str
    crops: int
    identities: int
    result: TuneResult
    before: Retrieval | None
    after: Retrieval | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with how to adopt the model."""
        data = asdict(self)
        data["before"] = self.before.to_dict() if self.before else None
        data["after"] = self.after.to_dict() if self.after else None
        data["adopt"] = adopt_hint(self.space, self.path)
        return data


def adopt_hint(space: str, path: str) -> str:
    """The setting and the command that put a tuned model into service."""
    return (
        f"set embedders.{space}.weights: {path} (or SURVEIL_EMBEDDERS__{space.upper()}__WEIGHTS"
        f"={path}), then run `surveil index reembed --space {space}`"
    )


def _score(embedder: OnnxEmbedder, held_out: TrainingSet | None) -> Retrieval | None:
    if held_out is None:
        return None
    return retrieval(embedder.embed(held_out.crops), held_out.labels, held_out.groups)


def tune_embedder(
    *,
    space: Space,
    settings: EmbedderSettings,
    weights: Path,
    data: TrainingSet,
    options: TuneOptions,
    out: Path,
    held_out: TrainingSet | None = None,
    progress: Callable[[int], None] | None = None,
) -> TuneReport:
    """Fine-tune the ONNX embedder at `weights` on `data` and write the result to `out`."""
    if settings.backend != "onnx":
        raise ConfigError(
            f"only ONNX embedders can be tuned; the {space} space uses {settings.backend}"
        )
    if out.resolve() == weights.resolve():
        raise ConfigError(f"--out {out} is the model being tuned; write the new model elsewhere")
    require_trainable(data)
    configure_torch_threads()
    plan = choose_device("cpu", None)
    base = OnnxEmbedder(space, settings, weights=weights, device=plan)
    before = _score(base, held_out)
    net = load_onnx_net(weights)
    result = train(net, data, options, reference=base.embed, progress=progress)
    export_onnx(net, out, height=settings.input_height, width=settings.input_width)
    tuned = OnnxEmbedder(space, settings, weights=out, device=plan)
    tuned.load()
    return TuneReport(
        space=space,
        base_model=base.model_id,
        model=tuned.model_id,
        path=str(out),
        source=data.source,
        crops=len(data.crops),
        identities=data.identities,
        result=result,
        before=before,
        after=_score(tuned, held_out),
    )
