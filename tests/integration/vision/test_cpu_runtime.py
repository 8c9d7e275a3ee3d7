"""The onnxruntime CPU path computes what the torch model computes, on real crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from surveil.config import GeneralEmbedderSettings
from surveil.vision.cpu_runtime import onnx_session_for
from surveil.vision.crops import read_image
from surveil.vision.device import choose_device
from surveil.vision.embedder import TorchvisionEmbedder, bundled_mobilenet_v2_weights, preprocess


def test_onnx_export_matches_torch(shared_data: Path) -> None:
    weights = bundled_mobilenet_v2_weights()
    assert weights is not None
    embedder = TorchvisionEmbedder(
        "general", GeneralEmbedderSettings(), weights=weights, device=choose_device("cpu", None)
    )
    embedder.load()
    assert embedder.runtime == "onnxruntime"
    model = embedder._model  # the torch network the session was exported from
    frame = read_image(shared_data / "mot/MOT17-mini/train/MOT17-09-FRCNN/img1/000001.jpg")
    crops = [frame[455:705, 251:356], frame[387:732, 1685:1856], frame[100:300, 800:900]]
    batch = preprocess(crops, 224, 224)
    session = onnx_session_for(model, 224, 224)
    assert session is not None
    (got,) = session.run(None, {"images": batch})
    with torch.inference_mode():
        want = model(torch.from_numpy(batch)).flatten(1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
