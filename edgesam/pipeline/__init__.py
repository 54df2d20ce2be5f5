"""The whole train-to-edge pipeline from one spec: `run_pipeline(PipelineSpec(...))`."""
from __future__ import annotations

from typing import Callable

from edgesam.pipeline.runner import StageFailed, run_stages
from edgesam.pipeline.spec import PipelineSpec, SynthSpec

__all__ = ["PipelineSpec", "StageFailed", "SynthSpec", "demo_spec", "run_pipeline"]


def demo_spec(out: str = "runs/demo") -> PipelineSpec:
    """The built-in default: synthetic inspection data, the small variant from scratch, every stage.

    Sized to finish in well under 15 minutes on a 2-core laptop CPU.
    """
    return PipelineSpec(
        out=out,
        model="vit_t",
        image_size=256,
        synth=SynthSpec(count=96, size=256, free=16, seed=0),
        # From scratch, the encoder needs a much smaller step than the decoder (a fast encoder collapses
        # the model to empty masks); no weight decay while it is still learning to use the prompts.
        finetune={"strategy": "full", "epochs": 12, "batch_size": 4, "objects_per_image": 4, "box_prob": 1.0,
                  "box_jitter": 0.05, "lr_encoder": 3e-5, "lr_decoder": 1e-3, "weight_decay": 0.0, "warmup_steps": 20},
        prune={"head_ratio": 0.34, "mlp_ratio": 0.5},
        recover_epochs=1,
        export={"precisions": ["fp32", "int8"], "calib_max_images": 16},
        bench={"max_images": 12},
    )


def run_pipeline(spec: PipelineSpec, progress: bool = True, echo: Callable[[str], None] = print) -> dict:
    """Run every stage of `spec`; a rerun skips stages whose inputs did not change."""
    from edgesam.pipeline.stages import _paths, build_stages

    spec.out_dir.mkdir(parents=True, exist_ok=True)
    (spec.out_dir / "pipeline.yaml").write_text(spec.to_yaml())
    context = {"spec": spec, "paths": _paths(spec), "progress": progress}
    return run_stages(build_stages(spec), spec.out_dir, context, echo)
