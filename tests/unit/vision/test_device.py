"""Device choice: one plan that every model follows."""

from __future__ import annotations

import pytest
import torch

from surveil.domain import ConfigError
from surveil.vision.device import (
    DevicePlan,
    choose_device,
    configure_blas_threads,
    configure_torch_threads,
    cpu_threads,
)

needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA here")


def test_cpu_plan_never_uses_half() -> None:
    plan = choose_device("cpu", True)
    assert plan == DevicePlan("cpu", False, ["CPUExecutionProvider"])
    assert not plan.is_cuda
    assert plan.cuda_index == 0


@needs_no_cuda
def test_auto_without_cuda_is_cpu() -> None:
    plan = choose_device("auto", None)
    assert plan.torch_device == "cpu"
    assert plan.half is False


@needs_no_cuda
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "CUDA:1"])
def test_cuda_without_cuda_is_a_config_error(device: str) -> None:
    with pytest.raises(ConfigError, match="CUDA is not available"):
        choose_device(device, None)


@needs_cuda
def test_auto_with_cuda_defaults_to_half() -> None:
    plan = choose_device("auto", None)
    assert plan.torch_device == "cuda:0"
    assert plan.half is True
    assert choose_device("cuda:0", False).half is False


@pytest.mark.parametrize("device", ["gpu", "tpu", "cuda:x", ""])
def test_unknown_device_names_the_setting(device: str) -> None:
    with pytest.raises(ConfigError, match="SURVEIL_DEVICE"):
        choose_device(device, None)


def test_torch_threads_follow_the_cpus_we_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_torch_threads.cache_clear()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    assert configure_torch_threads() == cpu_threads() == torch.get_num_threads()
    assert configure_torch_threads() == cpu_threads()  # cached: set once per process


def test_blas_gets_one_thread_unless_the_operator_pinned_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    with threadpool_limits(limits=None):  # whatever this test sets is undone after it
        configure_blas_threads.cache_clear()
        assert configure_blas_threads() == 1
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
        assert blas and all(p["num_threads"] == 1 for p in blas)
        configure_blas_threads.cache_clear()
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
        assert configure_blas_threads() is None  # the operator's setting stands
    configure_blas_threads.cache_clear()
