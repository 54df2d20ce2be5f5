"""Plain numpy result types shared by the torch predictor and the torch-free runtime."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Prediction:
    """Masks at the original image size for B prompt sets.

    masks: (B, M, H, W) bool; scores: (B, M) predicted IoU; low_res_logits: (B, M, 4h, 4w) float32.
    M is 1 for single-mask output and 3 for multimask output.
    """

    masks: np.ndarray
    scores: np.ndarray
    low_res_logits: np.ndarray

    def best(self) -> "Prediction":
        """Per prompt set, keep the mask with the highest predicted IoU."""
        idx = self.scores.argmax(axis=1)
        rows = np.arange(len(idx))
        return Prediction(
            self.masks[rows, idx][:, None], self.scores[rows, idx][:, None], self.low_res_logits[rows, idx][:, None]
        )


def select_outputs(low_res: np.ndarray, iou: np.ndarray, multimask: bool) -> tuple[np.ndarray, np.ndarray]:
    """SAM's choice among the 4 decoder outputs: mask 0 for single-mask, masks 1..3 for multimask."""
    sl = slice(1, None) if multimask else slice(0, 1)
    return low_res[:, sl], iou[:, sl]
