"""Where and in which precision a run executes: device auto-detection, autocast, peak memory.

`resolve_device("auto")` picks CUDA, then MPS, then CPU. `resolve_precision("auto", device)` picks
bf16 on CUDA that supports it, fp16 on other CUDA and MPS, fp32 on CPU (CPU autocast is rarely a
win). A flag named bf16 casts to bf16: nothing here maps one precision onto another.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import psutil
import torch

from vjepa_core.errors import UserError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise UserError(f"device: unknown {name!r} (use auto, cpu, cuda, cuda:N or mps)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device: {name!r} asked for but CUDA is not available on this machine")
    return device


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision != "auto":
        if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise UserError("precision: bf16 is not supported by this GPU (use fp16 or fp32)")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "mps":
        return "fp16"
    return "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward pass; fp32 means no autocast at all."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[precision])


class PeakMemory:
    """Peak memory of a block: CUDA's allocator peak, or the process RSS sampled every 20 ms elsewhere."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.peak_bytes = int(torch.cuda.max_memory_allocated(self.device))
        else:
            self._stop.set()
            assert self._thread is not None
            self._thread.join()

    def _sample(self) -> None:
        process = psutil.Process()
        while True:
            self.peak_bytes = max(self.peak_bytes, process.memory_info().rss)
            if self._stop.wait(0.02):
                return


def process_peak_rss() -> int:
    """Bytes: the largest resident set this process has had so far (the kernel's high-water mark)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # macOS counts bytes, Linux KiB


@contextlib.contextmanager
def fork_rng(seed: int) -> Iterator[None]:
    """Run a block with a fixed torch seed without disturbing the caller's random stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class RandomStream:
    """A private torch random stream: code inside `with stream:` draws from it (and moves it on), and
    the caller's stream is put back after. Runs trained side by side (dropout in LoRA layers) each keep
    the draws they would have had alone."""

    def __init__(self, device: torch.device, seed: int) -> None:
        self.device = device
        outer = self._get()
        torch.manual_seed(seed)  # seeds the CPU and every GPU generator
        self.state = self._get()
        self._set(outer)
        self._outer: tuple[torch.Tensor, torch.Tensor | None] | None = None

    def _get(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        accelerator = None  # GPU kernels (dropout) draw from the device's own generator
        if self.device.type == "cuda":
            accelerator = torch.cuda.get_rng_state(self.device)
        elif self.device.type == "mps":
            accelerator = torch.mps.get_rng_state()
        return torch.get_rng_state(), accelerator

    def _set(self, state: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        torch.set_rng_state(state[0])
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(state[1], self.device)
        elif self.device.type == "mps":
            torch.mps.set_rng_state(state[1])

    def __enter__(self) -> RandomStream:
        self._outer = self._get()
        self._set(self.state)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._outer is not None
        self.state = self._get()
        self._set(self._outer)
