"""`compare_strategies`: train several strategies on the same split and budget, one table + PNG."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgesam.train.config import STRATEGIES
from edgesam.utils.config import ConfigError
from edgesam_runtime.files import atomic_path, write_json_atomic, write_text_atomic

COLUMNS = ("strategy", "val_miou", "val_dice", "trainable_params", "adapter_mib", "images_per_s", "peak_mem_gib", "wall_s")


@dataclass
class ComparisonTable:
    rows: list[dict] = field(default_factory=list)
    init: str = "pretrained"

    @property
    def markdown(self) -> str:
        head = ("| strategy | val mIoU | val Dice | trainable params | adapter/ckpt MiB | images/s | peak GiB | wall s |\n"
                "|---|---|---|---|---|---|---|---|")
        lines = [f"| {r['strategy']} | {r['val_miou']:.4f} | {r['val_dice']:.4f} | {r['trainable_params']:,} | "
                 f"{r['adapter_mib']:.2f} | {r['images_per_s']:.2f} | {r['peak_mem_gib']:.2f} | {r['wall_s']:.0f} |"
                 for r in self.rows]
        note = " (init: random: trained from scratch)" if self.init == "random" else ""
        return f"## Strategy comparison{note}\n\n{head}\n" + "\n".join(lines) + "\n"


def compare_strategies(config, strategies, progress: bool = True) -> ComparisonTable:
    """Train each strategy with `config` (same seed, split, epochs and steps) under `<out>/<strategy>`."""
    bad = [s for s in strategies if s not in STRATEGIES]
    if bad or not strategies:
        raise ConfigError(f"compare: expected strategies from {list(STRATEGIES)}, got {list(strategies)}")
    from edgesam.train.run import finetune

    out = Path(config.out)
    table = ComparisonTable(init=config.init)
    for s in strategies:
        res = finetune(config.replace(strategy=s, out=str(out / s)).validate(), progress=progress)
        table.rows.append({"strategy": s, "val_miou": res.best_miou, "val_dice": res.best_dice,
                           "trainable_params": res.trainable_params, "adapter_mib": res.adapter_bytes / 2 ** 20,
                           "images_per_s": res.images_per_s, "peak_mem_gib": res.peak_mem_gib, "wall_s": res.wall_s,
                           "run_dir": res.run_dir})
    write_text_atomic(out / "comparison.md", table.markdown)
    write_json_atomic(out / "comparison.json", {"init": table.init, "config": config.to_dict(), "rows": table.rows})
    _plot(table, out / "comparison.png")
    return table


def _plot(table: ComparisonTable, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["strategy"] for r in table.rows]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, key, title in zip(axes, ("val_miou", "images_per_s", "adapter_mib"),
                              ("val mIoU", "images/s", "adapter / checkpoint MiB")):
        ax.bar(names, [r[key] for r in table.rows], color="tab:blue")
        ax.set_title(title)
    if table.init == "random":
        fig.suptitle("init: random (trained from scratch)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
