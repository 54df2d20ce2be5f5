"""Fine-tuning: config, strategies (LoRA, decoder, partial, full), losses, loop, merge, comparison."""
from edgesam.train.config import FinetuneConfig
from edgesam.train.run import FinetuneResult, finetune

__all__ = ["FinetuneConfig", "FinetuneResult", "compare_strategies", "finetune", "merge_run"]


def __getattr__(name):  # lazy: merge and compare pull in more modules
    if name == "merge_run":
        from edgesam.train.merge import merge_run

        return merge_run
    if name == "compare_strategies":
        from edgesam.train.compare import compare_strategies

        return compare_strategies
    raise AttributeError(name)
