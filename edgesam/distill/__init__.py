"""Distillation: a small student encoder learns a fine-tuned SAM's image embeddings on the line's own images.

The student keeps the teacher's prompt encoder and mask decoder, so its checkpoint is a complete SAM
that every other verb (eval, export, predict, the runtime) takes like any other:
    distill(DistillConfig(teacher="merged.pth", student="vit_n", images="line_images/", out="student.pth"))
"""
from edgesam.distill.config import DistillConfig

__all__ = ["DistillConfig", "compare_students", "distill"]


def __getattr__(name):  # lazy: the run pulls in torch, the exporter and the evaluation
    if name == "distill":
        from edgesam.distill.run import distill

        return distill
    if name == "compare_students":
        from edgesam.distill.variants import compare_students

        return compare_students
    raise AttributeError(name)
