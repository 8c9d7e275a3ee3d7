"""Run a torch backbone through onnxruntime on CPU, where it is several times faster.

PyTorch's eager depthwise convolutions are slow on CPU: MobileNetV2 at 224x224 measured
47 crops/s in torch and 152 crops/s through onnxruntime on the same 2 cores (see
docs/performance.md). The network is exported once at load; the weights and
the model id stay those of the torch model.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import structlog

from surveil.vision.device import cpu_threads

log = structlog.get_logger(__name__)


def _pooled(model: Any) -> Any:
    """Wrap a backbone so the exported graph ends in a flat (N, D) feature matrix."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.inner(x).flatten(1)
            return out

    return Pooled(model).eval()


def onnx_session_for(model: Any, height: int, width: int) -> Any | None:
    """An onnxruntime session computing `model(x).flatten(1)`, or None if export fails."""
    import onnxruntime as ort
    import torch

    sample = torch.zeros(1, 3, height, width)
    try:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            path = Path(tmp) / "model.onnx"
            warnings.simplefilter("ignore")  # the TorchScript exporter announces deprecation
            torch.onnx.export(
                _pooled(model).float().to(memory_format=torch.contiguous_format),
                (sample,),
                path,
                input_names=["images"],
                output_names=["features"],
                dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
                dynamo=False,
            )
            graph = path.read_bytes()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = cpu_threads()
        return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # export failures come in many types; torch still works
        log.warning("embedder.onnx_export_failed", error=str(exc).splitlines()[0])
        return None
