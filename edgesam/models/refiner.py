"""A light mask-refinement stage: the decoder's low-res logits, sharpened with the input at full resolution.

SAM decodes masks at a quarter of its input side: a 128 px ROI crop gives a 32x32 mask, and a crack
one or two pixels wide in the crop is a fraction of one low-res cell. No amount of training lifts a
mask above what its grid can draw (`edgesam.eval.ceiling` measures that bound per class). The
refiner draws the mask on a finer grid: a small U-Net over the encoder's own input (the crop, or
the padded image) at `1/stride` of the input side, fed the decoder's logits at every level, adds a
residual to the bilinearly upsampled logits.

Its last layer starts at zero, so a model given a refiner answers exactly as before until the
refiner is trained: adding one to a trained checkpoint never makes the start worse. It is recorded
in the architecture (`ArchConfig.extra["refine"]`, an `edgesam.roi.RefineSpec`), saved under
`mask_refiner.*`, exported as its own graph and run by the runtime after the decoder.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgesam.roi import RefineSpec


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.ReLU(inplace=True))


class MaskRefiner(nn.Module):
    """(B, 3, S, S) encoder input + (B, 1, S/4, S/4) logits -> (B, 1, S/stride, S/stride) logits.

    Levels run from the output grid down to the decoder's: stride 1 has three (S, S/2, S/4), stride 2
    two. Each level sees the image features and the logits resized to it; the decoding path adds them
    back up, and a zero-initialised 1x1 convolution turns the last features into the residual.
    """

    def __init__(self, spec: RefineSpec = RefineSpec()):
        super().__init__()
        self.spec = spec
        levels = 3 if spec.stride == 1 else 2
        widths = [spec.width * 2 ** i for i in range(levels)]  # output grid first
        self.stem = _conv(3, widths[0], stride=spec.stride)
        self.down = nn.ModuleList(_conv(widths[i], widths[i + 1], stride=2) for i in range(levels - 1))
        self.bottom = _conv(widths[-1] + 1, widths[-1])
        self.up = nn.ModuleList(_conv(widths[i + 1] + widths[i] + 1, widths[i]) for i in range(levels - 1))
        self.head = nn.Conv2d(widths[0], 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, image: torch.Tensor, low_res: torch.Tensor) -> torch.Tensor:
        if image.shape[0] == 1 and low_res.shape[0] > 1:  # whole-image framing: one image, many masks
            image = image.expand(low_res.shape[0], -1, -1, -1)
        skips = [self.stem(image)]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = self.bottom(torch.cat([skips[-1], low_res], dim=1))
        for i in reversed(range(len(self.up))):
            skip = skips[i]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            coarse = F.interpolate(low_res, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = self.up[i](torch.cat([x, skip, coarse], dim=1))
        coarse = F.interpolate(low_res, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return coarse + self.head(x)


def attach_refiner(sam, spec: RefineSpec) -> MaskRefiner:
    """Give `sam` a fresh refiner (`sam.mask_refiner`): the builder's way, and finetune's for a base
    that has none. Until trained it leaves every mask as it was (its residual starts at zero)."""
    sam.mask_refiner = MaskRefiner(spec)
    return sam.mask_refiner
