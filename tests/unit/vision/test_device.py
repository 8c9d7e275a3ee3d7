"""Device choice: one plan that every model follows."""

from __future__ import annotations

import pytest
import torch

from surveil.domain import ConfigError
from surveil.vision.device import DevicePlan, choose_device, configure_torch_threads, cpu_threads

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
