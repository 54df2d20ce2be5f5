"""Teacher and student models of a distillation run.

The student is a registered variant's image encoder at the teacher's input size (so its embedding
grid is the teacher's), with the teacher's prompt encoder and mask decoder copied in unchanged. Its
architecture records the teacher's input framing and where it came from, so the student checkpoint
loads, exports and runs in the runtime without flags, exactly as the teacher would.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from edgesam.models import ArchConfig, arch_for, build_sam, load_model
from edgesam.train.cache import module_hash
from edgesam_runtime import io_spec
from edgesam_runtime.backends import ov as ov_backend
from edgesam_runtime.backends.ort import OrtGraph
from edgesam_runtime.backends.ov import OvGraph
from edgesam_runtime.envinfo import cpu_features, has_bf16_math
from edgesam_runtime.files import sha256_file
from edgesam_runtime.threads import cpu_threads

# What the student takes over from the teacher: everything but the encoder. A mask refiner reads the
# encoder's input, not its output, so the teacher's serves the student unchanged.
DECODER_PREFIXES = ("prompt_encoder.", "mask_decoder.", "mask_refiner.")


@dataclass
class Teacher:
    model: torch.nn.Module
    arch: ArchConfig
    path: Path
    sha256: str
    backend: str

    @property
    def image_size(self) -> int:
        return self.arch.image_size

    @property
    def cache_id(self) -> str:
        """Names the cache folder: the encoder's weights as loaded (after any resize) and the backend."""
        return f"{self.arch.variant}-{self.image_size}-{self.backend}-{module_hash(self.model.image_encoder)}"

    why: str = "asked for"  # why this backend runs the teacher (auto: see `teacher_backend`)

    def describe(self) -> dict:
        return {"checkpoint": str(self.path.resolve()), "checkpoint_sha256": self.sha256, "backend": self.backend,
                "backend_why": self.why, "arch": self.arch.to_dict(), "dtype": "float16"}

    def encoder(self, work_dir: Path, threads: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
        """(1, 3, S, S) float32 -> (1, C, e, e) float32 through the chosen backend (the ONNX ones through
        the teacher's exported encoder graph and the runtime's own backends)."""
        if self.backend in RUNTIME_BACKENDS:
            return _runtime_encoder(self.model, Path(work_dir) / "encoder.onnx", self.backend, threads)
        encoder = self.model.image_encoder.eval()

        @torch.inference_mode()
        def encode(x: np.ndarray) -> np.ndarray:
            return encoder(torch.from_numpy(x)).float().numpy()
        return encode


# The teacher's encoder through the runtime: ONNX Runtime fp32, OpenVINO fp32, OpenVINO bf16.
RUNTIME_BACKENDS = ("onnx", "openvino", "openvino_bf16")


def teacher_backend(asked: str = "auto", cpu: dict | None = None, openvino: bool | None = None) -> tuple[str, str]:
    """(backend, why) that computes the teacher cache. "auto": the fastest the machine has, through the
    project's own export and runtime: OpenVINO in bf16 on a CPU with bf16 math (AVX512_BF16/AMX; its
    embeddings agree with fp32 to the cache's own fp16 rounding, measured in benchmarks/distill), OpenVINO
    fp32 elsewhere, ONNX Runtime fp32 without OpenVINO; never torch eager (5-10x slower on a CPU)."""
    if asked != "auto":
        return asked, "asked for"

    cpu = cpu or cpu_features()
    openvino = ov_backend.available() if openvino is None else openvino
    if not openvino:
        return "onnx", "auto: OpenVINO is not installed; ONNX Runtime fp32"
    if has_bf16_math(cpu):
        return "openvino_bf16", f"auto: OpenVINO bf16, the CPU has bf16 math ({cpu.get('isa')})"
    return "openvino", f"auto: OpenVINO fp32, the CPU has no bf16 math ({cpu.get('isa')})"


def load_teacher(path: str | Path, image_size: int | None = None, backend: str = "torch") -> Teacher:
    model, arch = load_model(None, path, image_size)
    for p in model.parameters():
        p.requires_grad_(False)
    chosen, why = teacher_backend(backend)
    return Teacher(model.eval(), arch, Path(path), sha256_file(path), chosen, why)


def _runtime_encoder(model, path: Path, backend: str, threads: int | None):
    """The teacher's encoder exported once (the bundle's own encoder graph), run by the runtime's backend."""
    from edgesam.export.onnx_export import export_encoder

    if not path.is_file():  # the exporter moves a finished graph into place, never a partial one
        path.parent.mkdir(parents=True, exist_ok=True)
        export_encoder(model, path)
    threads = threads or cpu_threads()
    if backend == "onnx":
        graph = OrtGraph(path, ["CPUExecutionProvider"], threads)  # idle pool threads sleep (no spinning)
        return lambda x: graph.run({io_spec.ENCODER_INPUT: np.ascontiguousarray(x, np.float32)})[0]

    graph = OvGraph(path, "bf16" if backend == "openvino_bf16" else "fp32", threads, use_cache=False)
    return lambda x: graph.run({io_spec.ENCODER_INPUT: np.ascontiguousarray(x, np.float32)})[io_spec.ENCODER_OUTPUT]


def student_arch(teacher: Teacher, variant: str) -> ArchConfig:
    """The student's architecture: `variant` at the teacher's input size, carrying the teacher's framing."""
    arch = arch_for(variant, teacher.image_size)
    t = teacher.arch
    if arch.image_size // arch.patch_size != t.image_size // t.patch_size:
        raise ValueError(f"student: {variant} makes a {arch.image_size // arch.patch_size}-token grid, the teacher "
                         f"a {t.image_size // t.patch_size}-token one; the decoder needs the teacher's grid")
    if arch.prompt_embed_dim != t.prompt_embed_dim:
        raise ValueError(f"student: {variant} ends in {arch.prompt_embed_dim} channels, the teacher's decoder "
                         f"expects {t.prompt_embed_dim}")
    provenance = {"teacher": str(teacher.path), "teacher_sha256": teacher.sha256, "teacher_variant": t.variant}
    return arch.replace(extra={**t.extra, "distilled_from": provenance})


def build_student(teacher: Teacher, variant: str, seed: int = 0):
    """(student Sam, arch): a seeded random encoder plus the teacher's prompt encoder and mask decoder."""
    arch = student_arch(teacher, variant)
    torch.manual_seed(seed)
    student = build_sam(arch)
    copy_decoder(teacher.model, student)
    return student, arch


def copy_decoder(source, target) -> None:
    """Copy the prompt encoder and mask decoder weights (they must have the same shapes)."""
    src = {k: v for k, v in source.state_dict().items() if k.startswith(DECODER_PREFIXES)}
    missing = target.load_state_dict(src, strict=False)
    absent = [k for k in missing.missing_keys if k.startswith(DECODER_PREFIXES)]
    if absent or missing.unexpected_keys:
        raise ValueError(f"student: decoder weights do not fit: missing {absent[:5]}, unexpected {missing.unexpected_keys[:5]}")


def same_decoder(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(v, sb[k]) for k, v in sa.items() if k.startswith(DECODER_PREFIXES))
