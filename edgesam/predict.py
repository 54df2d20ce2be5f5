"""The PyTorch reference predictor: what every exported graph and the runtime are checked against.

It runs the official SAM modules; all image and prompt geometry goes through `edgesam.geometry`,
the same numpy code the torch-free runtime uses.
"""
from __future__ import annotations

import numpy as np
import torch

from edgesam import geometry
from edgesam.models.prompt import decode_all
from edgesam.types import Prediction, select_outputs


class SamReferencePredictor:
    """`set_image` once, then `predict` any number of prompt sets against the cached embedding."""

    def __init__(self, model, device: str | torch.device = "cpu"):
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.image_size = model.image_encoder.img_size
        self.features: torch.Tensor | None = None
        self.original_hw: tuple[int, int] | None = None

    @torch.inference_mode()
    def set_image(self, image: np.ndarray) -> None:
        """Any HxW image (gray, RGB, RGBA; uint8 or uint16): encode it once."""
        x, self.original_hw, _ = geometry.preprocess(image, self.image_size)
        self.features = self.model.image_encoder(torch.from_numpy(x).to(self.device))

    def set_embedding(self, features: torch.Tensor, original_hw: tuple[int, int]) -> None:
        """Reuse an embedding computed elsewhere (a cache, a batched encoder call)."""
        self.features, self.original_hw = features.to(self.device), tuple(original_hw)

    @torch.inference_mode()
    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = False,
    ) -> Prediction:
        """Masks for one or many prompt sets (B boxes, or B point sets of N points) in one decoder call.

        Coordinates are in original-image pixels. `mask_input` is (B, 1, 4h, 4w) low-res logits from
        an earlier call. Returns masks (B, M, H, W), scores (B, M), low-res logits (B, M, 4h, 4w).
        """
        if self.features is None:
            raise RuntimeError("predict: call set_image first")
        coords, labels = geometry.build_prompt_arrays(
            point_coords, point_labels, boxes, self.original_hw, self.image_size
        )
        low_res, iou = self.decode(coords, labels, mask_input)
        low_res, iou = select_outputs(low_res, iou, multimask)
        masks = geometry.upscale_masks(low_res, self.original_hw, self.image_size)
        return Prediction(masks=masks, scores=iou, low_res_logits=low_res)

    def decode(self, coords: np.ndarray, labels: np.ndarray, mask_input: np.ndarray | None):
        """Prompt encoder + mask decoder on prepared (B, N, 2)/(B, N) arrays -> all 4 outputs (numpy)."""
        masks_t = None if mask_input is None else torch.as_tensor(mask_input, dtype=torch.float32, device=self.device)
        low_res, iou = decode_all(
            self.model,
            self.features,
            torch.from_numpy(coords).to(self.device),
            torch.from_numpy(labels).to(self.device),
            masks_t,
        )
        return low_res.float().cpu().numpy(), iou.float().cpu().numpy()
