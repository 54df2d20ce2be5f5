"""Datasets for prompted segmentation on inspection lines (numpy + Pillow only, no torch).

Layouts: ``images/`` + ``masks/`` folders (binary or instance-id masks), COCO JSON (polygons and
RLE), and per-class folders of those; plus validation, prompt sampling, joint augmentation and a
synthetic inspection-image generator for tests and demos.
"""

from .augment import AugmentConfig, Augmenter
from .check import ClassReport, DatasetReport, check_dataset
from .datasets import Dataset, count_objects, label_components, load_dataset, mask_to_objects, resolve_mask_mode
from .io import DataError, list_images, read_image, read_mask, write_image_atomic
from .prompt_sampling import PromptSample, sample_box, sample_points, sample_prompt, tight_box
from .records import ImageRecord, Sample
from .split import split_by_stem
from .synth import synthesize_dataset

__all__ = [
    "AugmentConfig", "Augmenter", "ClassReport", "DataError", "count_objects", "Dataset", "DatasetReport", "ImageRecord",
    "PromptSample", "Sample", "check_dataset", "label_components", "list_images", "load_dataset",
    "mask_to_objects", "read_image", "read_mask", "resolve_mask_mode", "sample_box", "sample_points",
    "sample_prompt", "split_by_stem", "synthesize_dataset", "tight_box", "write_image_atomic",
]
