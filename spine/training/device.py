"""Which device and numeric precision a run trains with.

``precision`` in a profile is ``float32``, ``mixed_bfloat16``, ``mixed_float16`` or ``auto``:

- ``auto``: ``mixed_float16`` where TensorFlow sees a GPU (CUDA tensor cores); ``mixed_bfloat16``
  on a CPU that computes bfloat16 natively (x86 flags ``avx512_bf16`` or ``amx_bf16``: about 1.3-1.8x
  faster per training step than float32 on such a machine, see ``spine/profiles.toml``); float32
  otherwise.
- an explicit mixed policy falls back to float32, with a warning, where it would be emulated
  (bfloat16 on a CPU without those flags is slower than float32; float16 needs a GPU).

Mixed policies keep the weights in float32 and compute in the 16-bit type; the models' output
heads are float32 so the softmax and the losses are computed in full precision.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

log = logging.getLogger(__name__)

BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def gpus() -> list[str]:
    """Names of the GPUs TensorFlow can use."""
    import tensorflow as tf

    return [device.name for device in tf.config.list_physical_devices("GPU")]


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; the platform's processor elsewhere)."""
    import platform

    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor() or platform.machine())


def simd_flags() -> str:
    """The vector-instruction flags that decide TensorFlow's CPU speed (AVX, AVX-512, AMX, FMA)."""
    return " ".join(sorted(f for f in cpu_flags() if f.startswith(("avx", "amx", "fma"))))


def cpu_has_bf16() -> bool:
    return any(flag in cpu_flags() for flag in BF16_FLAGS)


def resolve_precision(requested: str) -> str:
    """The Keras dtype policy a run uses on this machine for the profile's ``precision``."""
    on_gpu = bool(gpus())
    if requested == "auto":
        return "mixed_float16" if on_gpu else ("mixed_bfloat16" if cpu_has_bf16() else "float32")
    supported = {"float32": True, "mixed_float16": on_gpu, "mixed_bfloat16": on_gpu or cpu_has_bf16()}
    if not supported[requested]:
        log.warning("precision %s is not native on this machine; training in float32", requested)
        return "float32"
    return requested


def describe() -> dict:
    """The device facts a record keeps."""
    return {"gpus": gpus(), "cpu_model": cpu_model(), "simd_flags": simd_flags(), "cpu_bf16": cpu_has_bf16()}
