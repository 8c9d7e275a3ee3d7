"""The one place that decides where models run (CPU or which GPU) and in what precision."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cache

import structlog

from surveil.domain import ConfigError

log = structlog.get_logger(__name__)

_CUDA = re.compile(r"^cuda(?::(\d+))?$")
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_BLAS_ENV = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


@dataclass(frozen=True)
class DevicePlan:
    """Where and how every model runs: torch device, fp16 or not, onnxruntime providers."""

    torch_device: str
    half: bool
    onnx_providers: list[str] = field(default_factory=lambda: ["CPUExecutionProvider"])

    @property
    def is_cuda(self) -> bool:
        """True when models run on a GPU."""
        return self.torch_device.startswith("cuda")

    @property
    def cuda_index(self) -> int:
        """The GPU ordinal (0 on CPU), for libraries that want a number, not a torch string."""
        _, _, index = self.torch_device.partition(":")
        return int(index) if index else 0


def cpu_threads() -> int:
    """CPUs this process may use (affinity and cgroup-pinned sets, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@cache
def configure_torch_threads() -> int:
    """Use every CPU this process is allowed once per process, unless the operator pinned it."""
    import torch

    if any(os.environ.get(name) for name in _THREAD_ENV):
        # An explicit OMP/MKL setting is the operator's call; torch already honours it.
        return int(torch.get_num_threads())
    threads = cpu_threads()
    torch.set_num_threads(threads)
    return threads


@cache
def configure_blas_threads() -> int | None:
    """One BLAS thread per process (numpy, scipy, FAISS's OpenBLAS), unless the operator
    pinned it; returns the limit set, None when left to the environment.

    Surveil's own BLAS work is small matrices inside hot loops (the tracker's cost
    matrices, re-scoring a track's members) while the models' thread pools already hold
    every core. A BLAS pool of its own there only spins against them: on the UA-DETRAC
    junction the tracking stage took 0.54 s with OpenBLAS's default threads and 0.19 s
    with one (docs/performance.md, "Threads"). FAISS's single-query search does not use
    BLAS, so search is unaffected.
    """
    if any(os.environ.get(name) for name in _BLAS_ENV):
        return None
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    return 1


def _onnx_providers(cuda: bool) -> list[str]:
    """CUDA first when asked for and onnxruntime was built with it; CPU always as fallback."""
    if not cuda:
        return ["CPUExecutionProvider"]
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    if "CUDAExecutionProvider" not in available:
        log.warning(
            "onnxruntime has no CUDA provider; ONNX models run on CPU",
            hint="install onnxruntime-gpu to run them on the GPU",
        )
        return ["CPUExecutionProvider"]
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def _torch_device(device: str) -> str:
    """Turn the 'device' setting into a torch device string, refusing what cannot work."""
    import torch

    wanted = device.strip().lower()
    if wanted == "cpu":
        return "cpu"
    if wanted == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    match = _CUDA.match(wanted)
    if match is None:
        raise ConfigError(
            f"setting 'device' (or SURVEIL_DEVICE) is {device!r}; "
            "use 'auto', 'cpu', 'cuda' or 'cuda:N'"
        )
    if not torch.cuda.is_available():
        raise ConfigError(
            f"device {device!r} asked for but CUDA is not available here; "
            "set SURVEIL_DEVICE=cpu or auto"
        )
    index = int(match.group(1) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(
            f"device {device!r} asked for but only {count} CUDA device(s) exist; "
            f"set SURVEIL_DEVICE to cuda:0..cuda:{count - 1} or auto"
        )
    return f"cuda:{index}"


def choose_device(device: str, half: bool | None) -> DevicePlan:
    """Pick the device once from settings so every model agrees on where it runs."""
    configure_torch_threads()
    configure_blas_threads()
    torch_device = _torch_device(device)
    cuda = torch_device.startswith("cuda")
    # fp16 only pays (and is only well supported) on GPUs; on CPU it is slower or unsupported.
    use_half = cuda and (True if half is None else half)
    if half and not cuda:
        log.info("half precision ignored on CPU", device=torch_device)
    return DevicePlan(
        torch_device=torch_device, half=use_half, onnx_providers=_onnx_providers(cuda)
    )
