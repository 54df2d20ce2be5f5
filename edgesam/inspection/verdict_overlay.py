"""An overlay a person at the line reads at a glance: each defect tinted by its verdict, labelled with its
class, verdict and deciding figure, and the part's verdict in a banner (numpy + Pillow)."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from edgesam_runtime.geometry import to_rgb_uint8
from edgesam_runtime.inspector import PartInspection
from edgesam_runtime.rules import NG, OK, REVIEW

VERDICT_COLORS = {OK: (40, 200, 80), NG: (235, 40, 40), REVIEW: (255, 190, 0)}


def verdict_overlay(image: np.ndarray, part: PartInspection, alpha: float = 0.45) -> Image.Image:
    rgb = to_rgb_uint8(image).astype(np.float32)
    for defect in part.defects:
        if defect.mask is not None and defect.mask.any():
            color = np.array(VERDICT_COLORS[defect.verdict.verdict], np.float32)
            rgb[defect.mask] = (1 - alpha) * rgb[defect.mask] + alpha * color
    out = Image.fromarray(rgb.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    for i, defect in enumerate(part.defects):
        color = VERDICT_COLORS[defect.verdict.verdict]
        x0, y0, x1, y1 = (float(v) for v in defect.prompt.box)
        draw.rectangle([x0, y0, x1, y1], outline=color, width=1)
        label_y = y0 - 11 if y0 >= 25 else min(y1 + 2, out.height - 11)  # clear of the banner
        draw.text((x0 + 2, label_y), f"{i} {defect.prompt.class_name} {defect.verdict.verdict}", fill=color)
    banner = f"{part.verdict.verdict}: {part.verdict.rule}"
    draw.rectangle([0, 0, min(out.width, 7 * len(banner) + 6), 12], fill=(0, 0, 0))
    draw.text((3, 1), banner, fill=VERDICT_COLORS[part.verdict.verdict])
    return out
