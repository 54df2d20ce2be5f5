"""What a bundle, a report or a benchmark records about the machine: tool versions, the CPU and its
instruction-set features, and the load at measurement time (torch-free: the toolchain adds torch's versions,
`edgesam.utils.environment`).

CPU features decide which int8/bf16 kernels exist (VNNI: int8 dot products; AVX512_BF16/AMX: bf16
matrix math), so figures from two machines are comparable only when their features are recorded.
"""
from __future__ import annotations

import importlib
import os
import platform
from functools import lru_cache
from importlib import metadata

# The flags that change which CPU kernels ONNX Runtime and OpenVINO pick, as Linux names them.
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def _version(module: str) -> str | None:
    try:
        return importlib.import_module(module).__version__
    except Exception:
        return None


def package_version(name: str) -> str | None:
    """Installed version without importing the package (nncf and openvino imports are slow)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _read_cpuinfo(path: str = "/proc/cpuinfo") -> tuple[str | None, set[str] | None]:
    """(model name, flags) of the first processor in /proc/cpuinfo; (None, None) where there is none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None, None
    model, flags = None, None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key == "flags" and flags is None:
            flags = set(value.split())
        if model is not None and flags is not None:
            break
    return model, flags


def parse_cpu(model: str | None, flags: set[str] | None) -> dict:
    """The CPU record: model, each flag of CPU_FLAGS (None when unknown), an `isa` summary, `amx`."""
    known = flags is not None
    record = {"model": model or platform.processor() or platform.machine() or None,
              "flags": {f: (f in flags) if known else None for f in CPU_FLAGS}}
    f = record["flags"]
    record["amx"] = bool(f["amx_tile"] and (f["amx_bf16"] or f["amx_int8"])) if known else None
    record["isa"] = isa_level(f) if known else "unknown"
    return record


def isa_level(flags: dict) -> str:
    """The best matrix-math tier the flags offer, in the order the kernels prefer them."""
    if flags.get("amx_tile") and (flags.get("amx_bf16") or flags.get("amx_int8")):
        return "amx"
    if flags.get("avx512_bf16"):
        return "avx512_bf16"
    if flags.get("avx512_vnni"):
        return "avx512_vnni"
    if flags.get("avx512f"):
        return "avx512"
    if flags.get("avx_vnni"):
        return "avx_vnni"
    if flags.get("avx2"):
        return "avx2"
    return "baseline"


@lru_cache(maxsize=1)
def cpu_features() -> dict:
    """This machine's CPU: {"model", "flags": {flag: bool | None}, "isa", "amx", "logical_cpus"}."""
    record = parse_cpu(*_read_cpuinfo())
    record["logical_cpus"] = os.cpu_count()
    return record


def has_int8_dot(cpu: dict) -> bool:
    """VNNI (AVX-512 or AVX) or AMX: int8 products accumulate in one instruction, the int8 speed-up."""
    f = cpu.get("flags", {})
    return bool(f.get("avx512_vnni") or f.get("avx_vnni") or cpu.get("amx"))


def has_bf16_math(cpu: dict) -> bool:
    """AVX512_BF16 or AMX-BF16: without them bf16 inference runs in fp32 (OpenVINO falls back)."""
    f = cpu.get("flags", {})
    return bool(f.get("avx512_bf16") or f.get("amx_bf16"))


def describe_cpu(cpu: dict | None = None) -> str:
    """One line: 'AMD EPYC: avx2; no avx512f, avx512_vnni, ...' for report headers."""
    cpu = cpu or cpu_features()
    flags = cpu.get("flags", {})
    have = [f for f in CPU_FLAGS if flags.get(f)]
    lack = [f for f in CPU_FLAGS if flags.get(f) is False]
    text = f"{cpu.get('model') or 'unknown CPU'}: {', '.join(have) or 'none of ' + '/'.join(CPU_FLAGS)}"
    return text + (f"; no {', '.join(lack)}" if lack and have else "")


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # not on every platform
        return None


def machine_state(threads: int | None = None) -> dict:
    """What every benchmark result records beside its figures: the CPU, the load right now, and the
    threads the CPU stages run with (`threads`: an explicit count, else the process's choice) and why."""
    from edgesam_runtime.threads import thread_record

    return {"cpu": cpu_features(), "load_average": load_average(), "cpu_line": describe_cpu(),
            "threads": thread_record(threads)}


def threads_line(record: dict) -> str:
    """One line for headers: '2 threads: every usable core (...); 0.03 of 2 cores busy now, load [..]'."""
    busy = record.get("busy_cores_now")
    busy_text = "busy cores now unknown" if busy is None else f"{busy:.2f} of {record['usable_cores']} cores busy now"
    return f"{record['why']}; {busy_text}, load average {record.get('load_average')}"


def environment() -> dict:
    """Python, numpy, onnx, onnxruntime (+ providers), OpenVINO, NNCF, TensorRT and the CPU."""
    env = {"python": platform.python_version(), "platform": platform.platform(), "numpy": _version("numpy"),
           "onnx": _version("onnx"), "onnxruntime": _version("onnxruntime")}
    try:
        import onnxruntime as ort

        env["onnxruntime_providers"] = ort.get_available_providers()
    except Exception:
        env["onnxruntime_providers"] = []
    env["openvino"] = package_version("openvino")
    env["nncf"] = package_version("nncf")
    env["tensorrt"] = _version("tensorrt")
    env["cpu"] = cpu_features()
    return env
