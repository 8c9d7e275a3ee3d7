"""A trainable torch twin of an ONNX re-ID network, and its export back to ONNX.

Why not a converter package: the person embedder (OSNet x0.25) uses a dozen plain ops,
so interpreting its graph node by node with the initializers as torch Parameters is a
few dozen lines, exact, and adds no dependency. Batch norms were folded into the convs
at export; the one left (after the final linear layer) keeps its running statistics.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F  # noqa: N812  (the usual name)
from onnx import numpy_helper
from torch import nn

from surveil.domain import ConfigError

__all__ = ["OnnxNet", "export_onnx", "load_onnx_net"]

Tensor = torch.Tensor
_SUPPORTED = {
    "Conv", "Relu", "Sigmoid", "Mul", "Add", "GlobalAveragePool", "AveragePool", "MaxPool",
    "Shape", "Gather", "Unsqueeze", "Concat", "Reshape", "Flatten", "Gemm",
    "BatchNormalization",
}  # fmt: skip


def _layer(node: onnx.NodeProto) -> str:
    """The top-level module a node came from ("/conv4/conv4.0/..." -> conv4)."""
    return node.name.strip("/").split("/")[0] or node.op_type


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pool_pads(attrs: dict[str, Any]) -> tuple[int, int]:
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:]:
        raise ConfigError(f"asymmetric pooling pads {pads} are not supported")
    return int(pads[0]), int(pads[1])


class OnnxNet(nn.Module):
    """Runs an ONNX graph's nodes in order with torch ops; float initializers are Parameters."""

    def __init__(self, model: onnx.ModelProto) -> None:
        super().__init__()
        graph = model.graph
        unknown = {n.op_type for n in graph.node} - _SUPPORTED
        if unknown:
            raise ConfigError(f"cannot tune this embedder: unsupported ONNX ops {sorted(unknown)}")
        self.input_name = graph.input[0].name
        self.output_name = graph.output[0].name
        self.nodes = list(graph.node)
        self.param_names: list[str] = []
        self.weights = nn.ParameterList()
        self.constants: dict[str, Tensor] = {}
        for init in graph.initializer:
            array = numpy_helper.to_array(init)
            if array.dtype == np.float32 and array.ndim > 0:
                self.param_names.append(init.name)
                self.weights.append(nn.Parameter(torch.from_numpy(array.copy())))
            else:
                self.constants[init.name] = torch.from_numpy(np.array(array))
        self._index = {name: i for i, name in enumerate(self.param_names)}
        # The layer each weight belongs to, from the node that uses it ("/conv4/..."):
        # folded convs have exporter names (onnx::Conv_1047), so the name alone cannot say.
        self.layer_of: dict[str, str] = {}
        for node in self.nodes:
            layer = _layer(node)
            for name in node.input:
                self.layer_of.setdefault(name, layer)

    def named_weights(self) -> dict[str, nn.Parameter]:
        """ONNX initializer name -> its Parameter (names like `conv5.0.conv1.weight`)."""
        return {name: self.weights[i] for name, i in self._index.items()}

    def forward(self, images: Tensor) -> Tensor:
        """Raw (unnormalised) features for an NCHW float batch, as onnxruntime gives them."""
        return self.head(self.stem(images, cut=0), cut=0)

    def cut_before(self, layer: str) -> int:
        """Index of the first node of `layer`: the nodes before it form the frozen stem."""
        for i, node in enumerate(self.nodes):
            if _layer(node) == layer:
                return i
        raise ConfigError(f"this embedder has no layer named {layer!r}")

    def stem(self, images: Tensor, *, cut: int) -> dict[str, Tensor]:
        """Run nodes[:cut]; return the values the later nodes read (what a cache keeps)."""
        values = self._run({self.input_name: images}, self.nodes[:cut])
        wanted = {name for node in self.nodes[cut:] for name in node.input}
        return {name: v for name, v in values.items() if name in wanted}

    def head(self, values: dict[str, Tensor], *, cut: int) -> Tensor:
        """Run nodes[cut:] from what `stem(..., cut=cut)` returned (or a cache of it)."""
        out: Tensor = self._run(dict(values), self.nodes[cut:])[self.output_name]
        return out

    def _run(self, values: dict[str, Any], nodes: list[onnx.NodeProto]) -> dict[str, Any]:
        for node in nodes:
            args = [self._value(values, name) for name in node.input]
            values[node.output[0]] = self._op(node)(args, _attrs(node))
        return values

    def _value(self, values: dict[str, Any], name: str) -> Any:
        if name in values:
            return values[name]
        if name in self._index:
            return self.weights[self._index[name]]
        if name in self.constants:
            return self.constants[name]
        return None  # an optional input left empty

    def _op(self, node: onnx.NodeProto) -> Callable[[list[Any], dict[str, Any]], Any]:
        return _OPS[node.op_type]


def _conv(a: list[Any], at: dict[str, Any]) -> Tensor:
    pads = list(at.get("pads", [0, 0, 0, 0]))
    x = a[0]
    if pads[:2] != pads[2:]:
        x = F.pad(x, (pads[1], pads[3], pads[0], pads[2]))
        pads = [0, 0, 0, 0]
    return F.conv2d(
        x, a[1], a[2] if len(a) > 2 else None,
        stride=tuple(at.get("strides", [1, 1])), padding=(pads[0], pads[1]),
        dilation=tuple(at.get("dilations", [1, 1])), groups=int(at.get("group", 1)),
    )  # fmt: skip


def _avg_pool(a: list[Any], at: dict[str, Any]) -> Tensor:
    return F.avg_pool2d(
        a[0], tuple(at["kernel_shape"]), tuple(at.get("strides", at["kernel_shape"])),
        _pool_pads(at), ceil_mode=bool(at.get("ceil_mode", 0)),
        count_include_pad=bool(at.get("count_include_pad", 0)),
    )  # fmt: skip


def _max_pool(a: list[Any], at: dict[str, Any]) -> Tensor:
    return F.max_pool2d(
        a[0], tuple(at["kernel_shape"]), tuple(at.get("strides", at["kernel_shape"])),
        _pool_pads(at), ceil_mode=bool(at.get("ceil_mode", 0)),
    )  # fmt: skip


def _gemm(a: list[Any], at: dict[str, Any]) -> Tensor:
    x = a[0].t() if at.get("transA", 0) else a[0]
    w = a[1].t() if at.get("transB", 0) else a[1]
    out: Tensor = float(at.get("alpha", 1.0)) * (x @ w)
    if len(a) > 2 and a[2] is not None:
        out = out + float(at.get("beta", 1.0)) * a[2]
    return out


def _batch_norm(a: list[Any], at: dict[str, Any]) -> Tensor:
    # Running statistics stay as exported (training=False): batches of a few identities
    # are too small to re-estimate them, and the scale and shift still learn.
    return F.batch_norm(
        a[0], a[3].detach(), a[4].detach(), a[1], a[2],
        training=False, eps=float(at.get("epsilon", 1e-5)),
    )  # fmt: skip


def _reshape(a: list[Any], at: dict[str, Any]) -> Tensor:
    shape, x = a[1], a[0]
    out: Tensor
    if isinstance(shape, _Shape):  # the exporter's Shape/Gather/Concat flatten idiom
        out = x.reshape(x.shape[0], *shape.rest)
    else:
        out = x.reshape([int(v) for v in shape.tolist()])
    return out


class _Shape:
    """A symbolic shape: keeps the batch dimension dynamic through the flatten idiom."""

    def __init__(self, rest: tuple[int, ...] = (), batch_only: bool = False) -> None:
        self.rest = rest
        self.batch_only = batch_only


def _concat(a: list[Any], at: dict[str, Any]) -> Any:
    if isinstance(a[0], _Shape) and a[0].batch_only:
        rest = tuple(int(v) for part in a[1:] for v in part.reshape(-1).tolist())
        return _Shape(rest)
    return torch.cat(a, dim=int(at.get("axis", 0)))


def _gather(a: list[Any], at: dict[str, Any]) -> Any:
    if isinstance(a[0], _Shape) and int(a[1]) == 0:
        return _Shape(batch_only=True)
    raise ConfigError("cannot tune this embedder: only the batch size may be gathered")


_OPS: dict[str, Callable[[list[Any], dict[str, Any]], Any]] = {
    "Conv": _conv,
    "Relu": lambda a, at: F.relu(a[0]),
    "Sigmoid": lambda a, at: torch.sigmoid(a[0]),
    "Mul": lambda a, at: a[0] * a[1],
    "Add": lambda a, at: a[0] + a[1],
    "GlobalAveragePool": lambda a, at: a[0].mean(dim=(2, 3), keepdim=True),
    "AveragePool": _avg_pool,
    "MaxPool": _max_pool,
    "Shape": lambda a, at: _Shape(),
    "Gather": _gather,
    "Unsqueeze": lambda a, at: a[0],
    "Concat": _concat,
    "Reshape": _reshape,
    "Flatten": lambda a, at: a[0].flatten(int(at.get("axis", 1))),
    "Gemm": _gemm,
    "BatchNormalization": _batch_norm,
}


def load_onnx_net(path: Path) -> OnnxNet:
    """The trainable twin of the ONNX model at `path` (ConfigError if it cannot be read)."""
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and friends for a bad file
        raise ConfigError(f"cannot read ONNX model {path}: {exc}") from exc
    return OnnxNet(model)


def export_onnx(net: OnnxNet, path: Path, *, height: int, width: int) -> None:
    """Write `net` as ONNX with a dynamic batch, the same input/output names as its source."""
    net.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns that the flatten idiom's constants are fixed: they are meant to be.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.zeros(2, 3, height, width),),
            str(tmp),
            dynamo=False,  # the TorchScript exporter: no onnxscript dependency
            input_names=[net.input_name],
            output_names=[net.output_name],
            dynamic_axes={net.input_name: {0: "batch"}, net.output_name: {0: "batch"}},
            opset_version=13,
        )
    tmp.replace(path)
