"""The PyTorch reference predictor: what every exported graph and the runtime are checked against.

It runs the official SAM modules; all image and prompt geometry goes through `edgesam_runtime.geometry` and
`edgesam_runtime.roi`, the same numpy code the torch-free runtime uses. The model's input framing
(`model.framing`: whole image, or a crop per box) is applied as the model was trained.
"""
from __future__ import annotations

import numpy as np
import torch

from edgesam_runtime import geometry, roi
from edgesam.models.decode import decode_all
from edgesam_runtime.prediction import Prediction, select_outputs

ENCODER_CHUNK = 16  # ROI crops encoded per encoder call: bounds activation memory for many boxes


class SamReferencePredictor:
    """`set_image` once, then `predict` any number of prompt sets.

    Whole-image framing encodes the image in `set_image` and reuses the embedding for every call; ROI
    framing keeps the frame and encodes one crop per box in `predict`.
    """

    def __init__(self, model, device: str | torch.device = "cpu"):
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.image_size = model.image_encoder.img_size
        self.framing = getattr(model, "framing", roi.WHOLE_IMAGE)
        self.features: torch.Tensor | None = None
        self.frame: np.ndarray | None = None  # ROI framing: the RGB frame the crops come from
        self.image_input: np.ndarray | None = None  # whole-image framing: the encoder input (a refiner reads it)
        self.original_hw: tuple[int, int] | None = None

    @torch.inference_mode()
    def set_image(self, image: np.ndarray) -> None:
        """Any HxW image (gray, RGB, RGBA; uint8 or uint16): encode it once (ROI framing: keep it)."""
        if self.framing.roi:
            self.frame = geometry.to_rgb_uint8(image)
            self.original_hw = self.frame.shape[:2]
            return
        x, self.original_hw, _ = geometry.preprocess(image, self.image_size)
        self.features = self.encode(x)
        self.image_input = x

    def set_embedding(self, features: torch.Tensor, original_hw: tuple[int, int]) -> None:
        """Reuse an embedding computed elsewhere (a cache, a batched encoder call); whole-image framing."""
        self.features, self.original_hw = features.to(self.device), tuple(original_hw)

    @torch.inference_mode()
    def encode(self, x: np.ndarray) -> torch.Tensor:
        """(B, 3, S, S) encoder input -> (B, C, S/16, S/16) embeddings, in chunks of ENCODER_CHUNK."""
        parts = [self.model.image_encoder(torch.from_numpy(x[i:i + ENCODER_CHUNK]).to(self.device))
                 for i in range(0, len(x), ENCODER_CHUNK)]
        return torch.cat(parts)

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
        an earlier call (not with a model that takes its box as the dense prompt). Returns masks
        (B, M, H, W), scores (B, M), low-res logits (B, M, 4h, 4w; in ROI framing, of each crop).
        """
        if self.original_hw is None:
            raise RuntimeError("predict: call set_image first")
        inputs = self.prepare(point_coords, point_labels, boxes, mask_input)
        features = self.features if inputs.images is None else self.encode(inputs.images)
        low_res, iou = self.decode(inputs.coords, inputs.labels, inputs.mask_input, features)
        low_res, iou = select_outputs(low_res, iou, multimask)
        logits = self.refine(self.image_input if inputs.images is None else inputs.images, low_res)
        if inputs.windows is not None:
            masks = roi.paste_masks(logits, inputs.windows, self.original_hw, self.image_size)
        else:
            masks = geometry.upscale_masks(logits, self.original_hw, self.image_size)
        return Prediction(masks=masks, scores=iou, low_res_logits=low_res)

    @torch.inference_mode()
    def refine(self, images: np.ndarray | None, low_res: np.ndarray) -> np.ndarray:
        """(B, M, s, s) selected logits -> the model's mask logits: the refiner's finer grid where the
        model has one (`images`: the encoder input, one image or one crop per prompt set), else as given."""
        refiner = getattr(self.model, "mask_refiner", None)
        if refiner is None:
            return low_res
        b, m = low_res.shape[:2]
        x = torch.from_numpy(images).to(self.device)
        if x.shape[0] == b and m > 1:
            x = x.repeat_interleave(m, dim=0)
        flat = torch.from_numpy(np.ascontiguousarray(low_res.reshape(b * m, 1, *low_res.shape[-2:]))).to(self.device)
        out = refiner(x, flat).float().cpu().numpy()
        return out.reshape(b, m, *out.shape[-2:])

    def prepare(self, point_coords, point_labels, boxes, mask_input) -> roi.ModelInputs:
        """Prompts (and, in ROI framing, the crops) as the model takes them."""
        if mask_input is not None and self.framing.dense_box:
            raise ValueError("mask_input: this model takes its box as the dense mask prompt; leave mask_input out")
        if self.framing.roi:
            return roi.roi_inputs(self.frame, point_coords, point_labels, boxes, self.framing, self.image_size)
        inputs = roi.image_inputs(point_coords, point_labels, boxes, self.framing, self.original_hw, self.image_size)
        if mask_input is not None:
            inputs.mask_input = np.asarray(mask_input, dtype=np.float32)
        return inputs

    def decode(self, coords: np.ndarray, labels: np.ndarray, mask_input: np.ndarray | None, features=None):
        """Prompt encoder + mask decoder on prepared (B, N, 2)/(B, N) arrays -> all 4 outputs (numpy).

        `features`: the image's embedding (default: the one `set_image` computed) or one per prompt set.
        """
        features = self.features if features is None else features
        masks_t = None if mask_input is None else torch.as_tensor(mask_input, dtype=torch.float32, device=self.device)
        low_res, iou = decode_all(
            self.model,
            features,
            torch.from_numpy(coords).to(self.device),
            torch.from_numpy(labels).to(self.device),
            masks_t,
        )
        return low_res.float().cpu().numpy(), iou.float().cpu().numpy()
