"""The same fixed-shape YOLO ONNX graph and weights, rewritten for another input size.

An Ultralytics export made without `dynamic=True` bakes its input size into a few
constants of the detection head: the anchor points and strides of every output cell,
and the cell count in two reshapes. The convolutions themselves take any size that is a
multiple of the largest stride. Rewriting those constants (and the size in the metadata,
which Ultralytics' predictor obeys for fixed-shape models) gives a model that runs the
same weights on a smaller canvas, with no export tools or network needed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from surveil.files import file_digest

#: Strides of the P3-P5 detection head every YOLOv8/YOLO11 detect export has.
HEAD_STRIDES = (8, 16, 32)


class UnsupportedGraphError(ValueError):
    """The ONNX file is not a fixed-shape YOLO detect export this module knows how to resize."""


def cell_count(size: int) -> int:
    """Output cells of a square `size` input over all head strides (8400 at 640)."""
    return sum((size // s) ** 2 for s in HEAD_STRIDES)


def anchor_grid(size: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Anchor points (1, 2, N) and strides (1, N) as Ultralytics' make_anchors lays them out."""
    points: list[npt.NDArray[np.float64]] = []
    strides: list[npt.NDArray[np.float64]] = []
    for stride in HEAD_STRIDES:
        cells = size // stride
        ys, xs = np.meshgrid(np.arange(cells) + 0.5, np.arange(cells) + 0.5, indexing="ij")
        points.append(np.stack([xs.ravel(), ys.ravel()]))
        strides.append(np.full(cells * cells, float(stride)))
    anchors = np.concatenate(points, axis=1)[None].astype(np.float32)
    return anchors, np.concatenate(strides)[None].astype(np.float32)


def _load(path: Path) -> Any:
    import onnx

    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf and IO errors alike: not a model we can read
        raise UnsupportedGraphError(f"cannot read {path}: {exc}") from exc


def _square_input_size(model: Any) -> int | None:
    """The fixed square H=W of the graph's image input; None if either side is dynamic."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        raise UnsupportedGraphError("the detector's input is not NCHW")
    height, width = (d.dim_value if d.HasField("dim_value") else 0 for d in dims[2:])
    if height == 0 or width == 0:
        return None
    if height != width:
        raise UnsupportedGraphError(f"the detector's input is not square ({height}x{width})")
    return int(height)


def onnx_input_size(path: Path) -> int | None:
    """The square input size a fixed-shape ONNX detector takes; None when it is dynamic."""
    return _square_input_size(_load(path))


def _replacement(
    array: npt.NDArray[Any], old: int, new: int, grids: dict[str, npt.NDArray[np.float32]]
) -> npt.NDArray[Any] | None:
    """What one initializer becomes at the new size, or None if it does not depend on it."""
    if array.dtype == np.int64 and array.ndim == 1 and old in array.tolist():
        return np.where(array == old, new, array).astype(np.int64)  # a reshape's shape
    if array.dtype != np.float32 or array.ndim < 2 or array.shape[-1] != old:
        return None
    for name in ("anchors", "strides"):
        if array.shape == grids[f"old_{name}"].shape:
            if not np.array_equal(array, grids[f"old_{name}"]):
                raise UnsupportedGraphError(
                    f"a head constant shaped like the {name} differs from them"
                )
            return grids[name]
    raise UnsupportedGraphError(f"a constant of shape {array.shape} depends on the input size")


def resized_detector(path: Path, size: int) -> bytes:
    """The serialised graph of `path` at a square `size` input; raises UnsupportedGraphError."""
    from onnx import numpy_helper

    model = _load(path)
    old_size = _square_input_size(model)
    if old_size is None:
        raise UnsupportedGraphError("the detector already takes any input size")
    if size % max(HEAD_STRIDES) or old_size % max(HEAD_STRIDES):
        raise UnsupportedGraphError(f"input sizes must be multiples of {max(HEAD_STRIDES)}")
    old, new = cell_count(old_size), cell_count(size)
    old_anchors, old_strides = anchor_grid(old_size)
    anchors, strides = anchor_grid(size)
    grids = {
        "old_anchors": old_anchors,
        "old_strides": old_strides,
        "anchors": anchors,
        "strides": strides,
    }
    graph = model.graph
    tensors = list(graph.initializer) + [
        attr.t
        for node in graph.node
        if node.op_type == "Constant"
        for attr in node.attribute
        if attr.name == "value"
    ]
    changed = 0
    for tensor in tensors:
        value = _replacement(numpy_helper.to_array(tensor), old, new, grids)
        if value is not None:
            tensor.CopyFrom(numpy_helper.from_array(value, tensor.name))
            changed += 1
    if changed == 0:
        raise UnsupportedGraphError("no anchor constants found: not a YOLO detect export")
    for dim in graph.input[0].type.tensor_type.shape.dim[2:]:
        dim.dim_value = size
    for dim in graph.output[0].type.tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value == old:
            dim.dim_value = new
    del graph.value_info[:]  # inferred shapes of the old size; onnxruntime re-infers them
    for prop in model.metadata_props:
        if prop.key == "imgsz":  # Ultralytics runs fixed-shape models at this size
            prop.value = str([size, size])
    data: bytes = model.SerializeToString()
    return data


def resized_detector_file(path: Path, size: int, cache_dir: Path) -> Path:
    """`path` at `size`, written once into cache_dir (keyed by content) for Ultralytics."""
    target = cache_dir / f"{path.stem}-{file_digest(path)}-{size}px.onnx"
    if target.is_file():
        return target
    data = resized_detector(path, size)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name and renamed, so a concurrent reader never sees half.
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".onnx.part")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    Path(tmp).replace(target)
    return target
