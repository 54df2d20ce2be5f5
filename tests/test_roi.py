"""ROI framing geometry: windows, crops, prompts in the crop frame, dense box prompt, map-back."""
import numpy as np
import pytest
import torch

from edgesam_runtime import geometry, roi
from edgesam_runtime.metrics import mask_iou
from edgesam.train.batches import low_res_targets


def _ellipse(h, w, cy, cx, ry, rx):
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def test_window_is_a_square_centred_on_the_box():
    (x0, y0, side), = roi.crop_windows(np.array([[100, 50, 139, 69]]), margin=2.0, min_side=16)
    assert side == 80  # 2 x the longest side (40 px inclusive)
    assert (x0 + side / 2, y0 + side / 2) == (120.0, 60.0)  # centre of [100, 140) x [50, 70)
    (_, _, tiny), = roi.crop_windows(np.array([[5, 5, 6, 6]]), margin=2.0, min_side=16)
    assert tiny == 16


def test_crop_outside_the_frame_is_the_pixel_mean():
    rgb = np.full((40, 60, 3), 200, np.uint8)
    x = roi.crop_input(rgb, (-20, -20, 40), 32)
    assert x.shape == (1, 3, 32, 32)
    assert np.abs(x[0, :, :8, :8]).max() < 0.01  # mean-filled corner normalises to ~0
    assert x[0, :, -4:, -4:].min() > 1.0  # the frame's bright pixels


def test_mask_round_trip_through_a_crop():
    """GT mask -> crop -> low-res target -> map back: the object comes back where it was, nothing else."""
    h, w, size = 300, 420, 128
    mask = _ellipse(h, w, 180, 250, 30, 45)
    box = np.array([[205, 150, 295, 210]], np.float32)  # tight box of the ellipse
    window = roi.crop_windows(box, 2.0, 16)[0]
    target = low_res_targets(roi.crop_mask(mask, window)[None], size)  # (1, 1, 32, 32) in [0, 1]
    assert target.max() == 1.0 and target.min() == 0.0
    back = roi.paste_masks(target - 0.5, window[None], (h, w), size)  # logit > 0 where > half covered
    assert back.shape == (1, 1, h, w) and back.any() and mask.any()
    assert mask_iou(back[0, 0], mask) > 0.95
    x0, y0, side = window
    outside = np.ones((h, w), bool)
    outside[max(y0, 0):y0 + side, max(x0, 0):x0 + side] = False
    assert not back[0, 0][outside].any()


def test_window_reaching_past_the_frame_maps_back_inside_it():
    h, w, size = 100, 100, 64
    mask = np.zeros((h, w), bool)
    mask[0:20, 85:100] = True  # a corner object: its window leaves the frame
    window = roi.crop_windows(np.array([[85, 0, 99, 19]]), 2.0, 16)[0]
    assert window[1] < 0 and window[0] + window[2] > w
    target = low_res_targets(roi.crop_mask(mask, window)[None], size)
    back = roi.paste_masks(target - 0.5, window[None], (h, w), size)
    assert mask.any() and back.any() and mask_iou(back[0, 0], mask) > 0.85


def test_box_corners_land_in_the_middle_half_of_the_crop():
    rgb = np.zeros((200, 300, 3), np.uint8)
    boxes = np.array([[40, 60, 79, 99], [200, 10, 299, 59]], np.float32)
    framing = roi.InputFraming(mode="roi", dense_box=True)
    inputs = roi.roi_inputs(rgb, None, None, boxes, framing, 128)
    assert inputs.images.shape == (2, 3, 128, 128) and inputs.labels.tolist() == [[2, 3], [2, 3]]
    assert inputs.coords.min() >= 31.0 and inputs.coords.max() <= 97.0  # margin 2: box spans [32, 96)
    dense = inputs.mask_input
    assert dense.shape == (2, 1, 32, 32)
    assert dense[0, 0, 16, 16] == roi.DENSE_BOX_LOGIT and dense[0, 0, 2, 2] == -roi.DENSE_BOX_LOGIT


def test_points_go_into_each_box_crop():
    rgb = np.zeros((200, 300, 3), np.uint8)
    boxes = np.array([[40, 60, 79, 99]], np.float32)
    inputs = roi.roi_inputs(rgb, np.array([[60, 80]], np.float32), np.array([1], np.float32), boxes,
                            roi.InputFraming(mode="roi"), 128)
    assert inputs.labels.tolist() == [[1, 2, 3]]
    assert inputs.coords[0, 0].tolist() == pytest.approx([64.0, 64.0])  # the box centre is the crop centre


def test_roi_framing_needs_a_box():
    with pytest.raises(geometry.GeometryError, match="box"):
        roi.roi_inputs(np.zeros((8, 8, 3), np.uint8), np.array([[2, 2]]), np.array([1]), None,
                       roi.InputFraming(mode="roi"), 64)


def test_whole_image_dense_box_covers_the_resized_box():
    inputs = roi.image_inputs(None, None, np.array([[0, 0, 99, 99]], np.float32), roi.InputFraming(dense_box=True),
                              (200, 200), 64)
    dense = inputs.mask_input[0, 0]  # the box is the top-left half x half of the image: 8 x 8 of 16 x 16 cells
    assert np.allclose(dense[:8, :8], roi.DENSE_BOX_LOGIT, atol=1e-4)
    assert np.allclose(dense[8:, :], -roi.DENSE_BOX_LOGIT) and np.allclose(dense[:, 8:], -roi.DENSE_BOX_LOGIT)


@pytest.mark.parametrize("bad, field", [({"mode": "crops"}, "mode"), ({"roi_margin": 0.5}, "roi_margin"),
                                        ({"roi_min_side": 0}, "roi_min_side"), ({"dense_box": "yes"}, "dense_box"),
                                        ({"margin": 2}, "unknown")])
def test_framing_validation_names_the_field(bad, field):
    with pytest.raises(ValueError, match=field):
        roi.InputFraming.from_dict(bad)


def test_framing_travels_with_the_checkpoint(tmp_path):
    from edgesam.models import arch_for, build_sam, load_model, save_checkpoint

    framing = roi.InputFraming(mode="roi", roi_margin=3.0, dense_box=True)
    arch = roi.with_framing(arch_for("vit_t", 64), framing)
    save_checkpoint(build_sam(arch), tmp_path / "m.pth", arch)
    model, loaded = load_model(None, tmp_path / "m.pth")
    assert model.framing == framing and roi.framing_of(loaded) == framing
    official = roi.with_framing(arch_for("vit_b"), framing)
    assert official.is_official_shape and not official.is_stock_loadable  # the framing must be recorded


def test_paired_decoding_equals_one_call_per_crop():
    from edgesam.models import arch_for, build_sam
    from edgesam.models.decode import decode_all

    torch.manual_seed(0)
    sam = build_sam(arch_for("vit_t", 64))
    feats = torch.randn(3, 256, 4, 4)
    coords, labels = torch.rand(3, 2, 2) * 64, torch.tensor([[2.0, 3.0]] * 3)
    dense = torch.randn(3, 1, 16, 16)
    low, iou = decode_all(sam, feats, coords, labels, dense)
    for k in range(3):
        one, one_iou = decode_all(sam, feats[k:k + 1], coords[k:k + 1], labels[k:k + 1], dense[k:k + 1])
        assert torch.allclose(low[k], one[0], atol=1e-5) and torch.allclose(iou[k], one_iou[0], atol=1e-5)
    with pytest.raises(ValueError, match="embeddings"):
        decode_all(sam, feats[:2], coords, labels)


def _one_box_at_a_time(rgb, points, labels, boxes, framing, size):
    """The mapping of one box alone, written out with SAM's own steps (the reference of the batched path)."""
    from PIL import Image

    windows = roi.crop_windows(boxes, framing.roi_margin, framing.roi_min_side)
    fill = np.clip(np.rint(np.asarray(geometry.PIXEL_MEAN)), 0, 255).astype(np.uint8)
    coords, codes, images = [], [], []
    for k, (x0, y0, side) in enumerate(windows):
        shift = np.array([x0, y0], np.float32)
        pts = None if points is None else points[None] - shift
        c, l = geometry.build_prompt_arrays(pts, None if labels is None else labels[None],
                                            boxes[k:k + 1] - np.tile(shift, 2), (int(side), int(side)), size)
        coords.append(c)
        codes.append(l)
        crop = Image.fromarray(roi.cut(rgb, (x0, y0, side), fill)).resize((size, size), Image.BILINEAR)
        chw = np.asarray(crop).astype(np.float32).transpose(2, 0, 1)
        mean = np.asarray(geometry.PIXEL_MEAN, np.float32)[:, None, None]
        images.append(((chw - mean) / np.asarray(geometry.PIXEL_STD, np.float32)[:, None, None])[None])
    return np.concatenate(coords), np.concatenate(codes), np.concatenate(images), windows


@pytest.mark.parametrize("with_points", [False, True])
def test_all_boxes_at_once_equal_one_box_at_a_time_bit_for_bit(with_points):
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (180, 260, 3), dtype=np.uint8)
    x0, y0 = rng.uniform(-15, 250, 8), rng.uniform(-15, 170, 8)  # some windows reach past the frame
    boxes = np.stack([x0, y0, x0 + rng.uniform(1, 70, 8), y0 + rng.uniform(1, 50, 8)], 1).astype(np.float32)
    points = rng.uniform(0, 150, (2, 2)).astype(np.float32) if with_points else None
    labels = np.array([1, 0], np.float32) if with_points else None
    framing = roi.InputFraming(mode="roi", roi_margin=1.5, dense_box=True)
    got = roi.roi_inputs(rgb, points, labels, boxes, framing, 128)
    coords, codes, images, windows = _one_box_at_a_time(rgb, points, labels, boxes, framing, 128)
    for name, want, have in (("coords", coords, got.coords), ("labels", codes, got.labels),
                             ("images", images, got.images), ("windows", windows, got.windows)):
        have, want = np.ascontiguousarray(have), np.ascontiguousarray(want)
        assert have.dtype == want.dtype and np.array_equal(have.view(np.uint8), want.view(np.uint8)), name
    scale = 128 / windows[:, 2:3].astype(np.float64)
    in_frame = np.stack([roi.to_window_frame(b.reshape(2, 2), w, 128).reshape(4) for b, w in zip(boxes, windows)])
    for k in range(len(boxes)):  # the dense prompt of each box alone
        one = roi.dense_box_prompt(in_frame[k:k + 1], np.repeat(scale[k:k + 1], 2, axis=1), 128)
        assert np.array_equal(one, got.mask_input[k:k + 1])
    assert (got.mask_input > 0).any() and (got.mask_input < 0).any()


def test_normalisation_equals_the_formula_bit_for_bit_for_every_byte():
    rgb = np.stack([np.arange(256, dtype=np.uint8).reshape(16, 16)] * 3, axis=2)
    want = (rgb.astype(np.float32).transpose(2, 0, 1) - np.asarray(geometry.PIXEL_MEAN, np.float32)[:, None, None]) \
        / np.asarray(geometry.PIXEL_STD, np.float32)[:, None, None]
    got = geometry.normalize_and_pad(rgb, 20)
    assert np.array_equal(got[0, :, :16, :16].view(np.uint32), want.view(np.uint32))
    assert not got[0, :, 16:, :].any() and not got[0, :, :, 16:].any()  # zero padding


@pytest.mark.parametrize("window", [(10, 5, 20), (-7, -3, 16), (50, 30, 40), (-40, -40, 200), (100, 100, 8), (-30, 10, 12)])
def test_cut_fills_only_what_lies_outside_the_frame(window):
    x0, y0, side = window
    rgb = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    for frame, fill in ((rgb, np.array([124, 116, 104], np.uint8)), (rgb[..., 0], 7)):
        padded = np.empty((460, 480) + frame.shape[2:], np.uint8)  # the frame in a sea of fill: the plain reference
        padded[...] = fill
        padded[200:260, 200:280] = frame
        want = padded[200 + y0:200 + y0 + side, 200 + x0:200 + x0 + side]
        assert np.array_equal(roi.cut(frame, window, fill), want)


@pytest.mark.parametrize("size", [128, 64, 96])
def test_a_window_reaching_past_the_frame_is_resized_from_the_part_that_matters_bit_for_bit(size, monkeypatch):
    """Crops of windows reaching past the frame resize only the rows and columns whose support touches the
    frame (a large defect's window on a narrow frame), and give the bytes of resizing the whole filled
    square; 96 px (not a power of two) takes the whole-square path."""
    from PIL import Image

    taken, resize_part = [], roi._resize_reaching_past
    monkeypatch.setattr(roi, "_resize_reaching_past", lambda *a: taken.append(resize_part(*a)) or taken[-1])
    rng = np.random.default_rng(size)
    fill = np.clip(np.rint(np.asarray(geometry.PIXEL_MEAN)), 0, 255).astype(np.uint8)
    for _ in range(150):
        h, w = (int(v) for v in rng.integers(20, 400, 2))
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        side = int(rng.integers(8, 900))
        windows = np.array([[int(rng.integers(-side, w)), int(rng.integers(-side, h)), side] for _ in range(3)])
        want = np.stack([np.asarray(Image.fromarray(roi.cut(rgb, win, fill)).resize((size, size), Image.BILINEAR))
                         for win in windows])
        reference = np.empty((len(windows), 3, size, size), np.float32)
        geometry.normalize_into(reference, want, geometry.PIXEL_MEAN, geometry.PIXEL_STD)
        assert np.array_equal(roi.crop_inputs(rgb, windows, size), reference)
    assert len(taken) > 300 and all(taken) == (size != 96)  # 96: only windows wholly outside the frame


def test_paste_back_equals_upscaling_the_whole_window_and_cutting_the_frame_out():
    rng = np.random.default_rng(3)
    h, w, size = 90, 240, 64
    windows = np.array([[-150, -200, 500], [10, 5, 40], [200, 60, 120], [-30, 70, 50], [300, 10, 20]])
    low = (rng.standard_normal((len(windows), 2, size // 4, size // 4)) * 4).astype(np.float32)
    low[:, 1] = -20.0  # an empty second mask per window
    got = roi.paste_masks(low, windows, (h, w), size)
    padded = np.zeros((len(windows), 2, h + 1200, w + 1200), bool)  # the frame inside a sea of background
    for k, (x0, y0, side) in enumerate(windows):
        padded[k, :, 600 + y0:600 + y0 + side, 600 + x0:600 + x0 + side] = geometry.upscale_masks(low[k], (side, side), size)
    assert np.array_equal(got, padded[:, :, 600:600 + h, 600:600 + w])
    assert got[:3, 0].reshape(3, -1).any(1).all() and not got[:, 1].any() and not got[4].any()  # the last lies outside
