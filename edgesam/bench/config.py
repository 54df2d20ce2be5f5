"""`BenchConfig`: what `edgesam bench` measures and which floors gate a release."""
from __future__ import annotations

from dataclasses import dataclass

from edgesam.eval.plan import PROMPT_KINDS
from edgesam.utils.config import Config, ConfigError


RUNTIME_BACKENDS = ("onnxruntime", "openvino", "tensorrt")


def parse_backends(value) -> str | tuple[str, ...]:
    """"all", "auto", or backend names (a tuple or a comma list)."""
    if isinstance(value, str) and value.strip().lower() in ("all", "auto"):
        return value.strip().lower()
    names = tuple(v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip())
    unknown = [n for n in names if n not in RUNTIME_BACKENDS]
    if not names or unknown:
        raise ConfigError(f"backends: expected 'all', 'auto' or a comma list of {', '.join(RUNTIME_BACKENDS)}, "
                               f"got {value!r}")
    return names


@dataclass
class BenchConfig(Config):
    bundle: str
    data: str
    reference: str | None = None  # checkpoint of the PyTorch reference (None: the bundle's source checkpoint)
    out: str | None = None  # folder for bench.json / bench.md / bench.png
    max_images: int = 8
    prompt: str = "box"  # box | point, drawn from the ground truth
    seed: int = 0
    split: str = "all"  # all | val: only the validation split held out by finetune
    val_fraction: float = 0.2  # with split=val: the fraction and seed finetune used
    split_seed: int = 0
    box_jitter: float = 0.0  # noise of sampled boxes (fraction of the box side); 0 = tight boxes, as `eval` scores
    graph_sets: tuple[str, ...] | None = None  # None: every graph set in the bundle
    # Backends per graph set: "all" (every backend that can run its format: ONNX on ONNX Runtime and
    # OpenVINO), "auto" (only the one Segmenter.open picks by default), or a tuple of backend names.
    backends: str | tuple[str, ...] = "all"
    threads: int | None = None  # intra-op threads of each runtime backend (None: its default)
    torch_fast: str = "auto"  # auto (when a GPU is present) | on | off
    torch_fast_dtype: str = "bfloat16"
    torch_fast_compile: bool = False
    min_iou: float | None = None  # floor: mean mask IoU against the reference, every format (needs >= 90 %
    #                               non-empty reference masks to be judged at all)
    max_latency_ms: float | None = None  # floor: decoder+postprocessing per prompt p95, every format
    max_encoder_ms: float | None = None  # floor: encoder p95, every format

    def __post_init__(self):
        if self.prompt not in PROMPT_KINDS:
            raise ConfigError(f"prompt: expected one of {PROMPT_KINDS}, got {self.prompt!r}")
        if self.split not in ("all", "val"):
            raise ConfigError(f"split: expected 'all' or 'val', got {self.split!r}")
        if not self.box_jitter >= 0:
            raise ConfigError(f"box_jitter: expected a fraction >= 0 of the box side, got {self.box_jitter}")
        if int(self.max_images) < 1:
            raise ConfigError(f"max_images: expected a positive integer, got {self.max_images}")
        if self.torch_fast not in ("auto", "on", "off"):
            raise ConfigError(f"torch_fast: expected auto, on or off, got {self.torch_fast!r}")
        if self.torch_fast_dtype not in ("bfloat16", "float16", "float32"):
            raise ConfigError(f"torch_fast_dtype: expected bfloat16, float16 or float32, got {self.torch_fast_dtype!r}")
        if self.min_iou is not None and not 0.0 <= self.min_iou <= 1.0:
            raise ConfigError(f"min_iou: expected a value in [0, 1], got {self.min_iou}")
        for name in ("max_latency_ms", "max_encoder_ms"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name}: expected a positive number of milliseconds, got {value}")
        if self.graph_sets is not None:
            self.graph_sets = tuple(self.graph_sets)
        self.backends = parse_backends(self.backends)

    def wants(self, backend: str, default: bool) -> bool:
        """Whether this bench measures `backend` (the default backend of its graph set when `default`)."""
        if self.backends == "all":
            return True
        if self.backends == "auto":
            return default
        return backend in self.backends
