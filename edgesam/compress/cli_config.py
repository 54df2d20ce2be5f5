"""YAML + flags -> PruneJob for `edgesam prune` (flags override the file; unknown keys are errors)."""
from __future__ import annotations

from pathlib import Path

from edgesam.compress.config import PruneConfig, RecoveryConfig

PRUNE_FLAGS = {"ratio": "ratio", "head_ratio": "head_ratio", "mlp_ratio": "mlp_ratio", "importance": "importance",
               "scope": "scope", "remove_blocks": "remove_blocks", "seed": "seed"}
RECOVER_FLAGS = {"recover_epochs": "epochs", "recover_steps": "max_steps", "lr": "lr", "seed": "seed"}
JOB_KEYS = ("checkpoint", "model", "image_size", "calib_data", "out", "recover_data", "eval_data",
            "eval_max_images", "latency_runs", "run_dir")


def default_config() -> dict:
    return {"checkpoint": None, "model": None, "out": "pruned.pth", "prune": PruneConfig(ratio=0.5).to_dict(),
            "recover": None, "recover_data": None, "calib_data": None, "eval_data": None, "latency_runs": 3}


def build_job(base: dict, flags: dict):
    from edgesam.compress.pipeline import PruneJob

    base = dict(base)
    prune = dict(base.pop("prune", None) or {})
    recover = base.pop("recover", None)
    recover = dict(recover) if isinstance(recover, dict) else ({} if recover else None)
    unknown = set(base) - set(JOB_KEYS)
    if unknown:
        raise ValueError(f"config: unknown keys {sorted(unknown)}; expected prune, recover or {list(JOB_KEYS)}")
    for flag, key in PRUNE_FLAGS.items():
        if flags.get(flag) is not None:
            prune[key] = flags[flag]
    # --recover-data alone enables recovery; --eval-data only measures.
    wants = any(flags.get(k) is not None for k in ("recover_epochs", "recover_steps", "recover_data"))
    if wants or (base.get("recover_data") and recover is None):
        recover = recover if recover is not None else {}
    if recover is not None:
        for flag, key in RECOVER_FLAGS.items():
            if flags.get(flag) is not None:
                recover[key] = flags[flag]
    job = {k: v for k, v in base.items()}
    job.update({k: flags[k] for k in JOB_KEYS if flags.get(k) is not None})
    if not job.get("out"):
        raise ValueError("--out: give the path of the pruned checkpoint to write")
    if not job.get("checkpoint") and not job.get("model"):
        raise ValueError("--checkpoint or --model: give the model to prune")
    for key in ("checkpoint", "calib_data", "recover_data", "eval_data", "run_dir", "out"):
        if job.get(key) is not None:
            job[key] = Path(job[key])
    return PruneJob(prune=PruneConfig.from_dict(prune), recovery=RecoveryConfig.from_dict(recover) if recover is not None else None,
                    **job)
