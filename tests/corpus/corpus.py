"""The bad-input corpus: every kind of broken file a user hands edgesam, written into a folder by code.

Each bad input is an `Input(kind, name, path, culprit)`: `culprit` is the text the error line must
contain (the file at fault, or the flag). Good assets (a tiny checkpoint, a bundle of it, a small
dataset, an image) are made once; the bad ones are derived from them, so every case differs from a
working input in exactly one way.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SIZE = 64  # the model's input size
BUNDLE_MAX_BOXES = 4
BUNDLE_MAX_POINTS = 4
PICTURE_HW = (48, 64)  # the test image: 64 wide, 48 high


@dataclass(frozen=True)
class Input:
    kind: str  # image, dataset, checkpoint, bundle, prompts, run_dir, images_folder, spec
    name: str
    path: Path | None  # the file or folder handed to the verb (None for prompts given as flags)
    culprit: str  # what the error line must name
    args: tuple = ()  # for prompts: the CLI arguments that carry them


class PayloadMarker:
    """Unpickling this calls `open(marker, "w")`: a checkpoint that would run code when loaded."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _png_size(path: Path, width: int, height: int) -> None:
    """Rewrite a PNG's header (IHDR) to claim another size, with a valid CRC."""
    import struct
    import zlib

    data = bytearray(path.read_bytes())
    start = data.index(b"IHDR")
    data[start + 4:start + 12] = struct.pack(">II", width, height)
    data[start + 17:start + 21] = struct.pack(">I", zlib.crc32(bytes(data[start:start + 17])))
    path.write_bytes(bytes(data))


def picture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(60, 120, PICTURE_HW, dtype=np.uint8)
    img[10:30, 20:44] = 220
    return img


def object_mask() -> np.ndarray:
    mask = np.zeros(PICTURE_HW, np.uint8)
    mask[10:30, 20:44] = 255
    return mask


# ----------------------------------------------------------------------------------------- images
def bad_images(root: Path) -> list[Input]:
    root.mkdir(parents=True, exist_ok=True)
    good = _png(root / "good.png", picture())
    out = []
    (root / "zero_byte.png").write_bytes(b"")
    out.append(Input("image", "zero-byte image", root / "zero_byte.png", "zero_byte.png"))
    data = good.read_bytes()
    (root / "truncated.png").write_bytes(data[: len(data) // 2])
    out.append(Input("image", "truncated image", root / "truncated.png", "truncated.png"))
    (root / "html_named.png").write_text("<html><body>404 Not Found</body></html>\n")
    out.append(Input("image", "mislabelled image (text named .png)", root / "html_named.png", "html_named.png"))
    _png(root / "elongated_30x5000.png", np.full((30, 5000), 100, np.uint8))  # 0 px high at the model's input
    out.append(Input("image", "30x5000 frame", root / "elongated_30x5000.png", "elongated_30x5000.png"))
    _png(root / "bomb.png", np.zeros((1, 1), np.uint8))
    _png_size(root / "bomb.png", 60000, 60000)  # header says 3.6 gigapixels: a decompression bomb
    out.append(Input("image", "decompression bomb (60000x60000 header)", root / "bomb.png", "bomb.png"))
    Image.fromarray(picture().astype(np.float32)).save(root / "float.tif")
    out.append(Input("image", "float image (unsupported mode)", root / "float.tif", "float.tif"))
    return out


# --------------------------------------------------------------------------------------- datasets
def _pairs(folder: Path, count: int = 3) -> Path:
    for i in range(count):
        _png(folder / "images" / f"part_{i}.png", picture(i))
        _png(folder / "masks" / f"part_{i}.png", object_mask())
    return folder


def bad_datasets(root: Path, good_image: Path) -> list[Input]:
    out = []

    def case(name, culprit, make):
        folder = root / name.split(" (")[0].replace(" ", "_").replace("-", "_")
        target = make(folder)
        out.append(Input("dataset", name, folder, culprit if culprit else target.name))

    def empty(folder):
        (folder / "images").mkdir(parents=True)
        (folder / "masks").mkdir()
        return folder

    def zero_byte(folder):
        _pairs(folder)
        (folder / "images/part_0.png").write_bytes(b"")
        return folder / "images/part_0.png"

    def truncated(folder):
        _pairs(folder)
        data = (folder / "images/part_1.png").read_bytes()
        (folder / "images/part_1.png").write_bytes(data[: len(data) // 2])
        return folder / "images/part_1.png"

    def mislabelled(folder):
        _pairs(folder)
        (folder / "images/part_2.png").write_text("not an image: a text file saved as .png\n")
        return folder / "images/part_2.png"

    def colour_mask(folder):
        _pairs(folder)
        rgb = np.stack([object_mask(), np.zeros(PICTURE_HW, np.uint8), object_mask() // 2], axis=2)
        _png(folder / "masks/part_1.png", rgb)
        return folder / "masks/part_1.png"

    def wrong_size_mask(folder):
        _pairs(folder)
        _png(folder / "masks/part_0.png", np.zeros((PICTURE_HW[0] // 2, PICTURE_HW[1]), np.uint8))
        return folder / "masks/part_0.png"

    def unmasked(folder):
        _pairs(folder)
        _png(folder / "images/part_9.png", picture(9))
        return folder / "images/part_9.png"

    def no_objects(folder):
        _pairs(folder)
        for mask in (folder / "masks").iterdir():
            _png(mask, np.zeros(PICTURE_HW, np.uint8))
        return folder

    def not_a_dataset(folder):
        folder.mkdir(parents=True)
        (folder / "notes.txt").write_text("photos of the line, not sorted yet\n")
        shutil.copyfile(good_image, folder / "part.png")
        return folder

    def coco(folder, annotations=None, text=None, image_name="part_0.png"):
        _png(folder / "images" / "part_0.png", picture())
        data = {"images": [{"id": 1, "file_name": image_name, "height": PICTURE_HW[0], "width": PICTURE_HW[1]}],
                "categories": [{"id": 1, "name": "defect"}],
                "annotations": annotations or [{"id": 1, "image_id": 1, "category_id": 1,
                                                "segmentation": [[20, 10, 44, 10, 44, 30, 20, 30]]}]}
        (folder / "annotations.json").write_text(json.dumps(data) if text is None else text)
        return folder / "annotations.json"

    def truncated_coco(folder):
        path = coco(folder)
        path.write_text(path.read_text()[:60])
        return path

    def junk_coco(folder):
        return coco(folder, text="<html><body>502 Bad Gateway</body></html>\n")

    def coco_outside(folder):
        coco(folder, image_name="../../../../../../etc/passwd")
        return Path("file_name")

    def coco_far_polygon(folder):
        coco(folder, [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 3e9, 0, 3e9, 3e9]]}])
        return Path("annotations[0].segmentation[0][2]")

    def coco_short_rle(folder):
        coco(folder, [{"id": 1, "image_id": 1, "category_id": 1,
                       "segmentation": {"size": list(PICTURE_HW), "counts": [5, 7]}}])
        return Path("annotation id 1")

    def coco_nested(folder):
        return coco(folder, text="[" * 100000 + "]" * 100000)

    def newline_name(folder):
        _pairs(folder)
        name = "part_0.png\nOK: 3 images, 3 objects\n.png"
        (folder / "images" / "part_0.png").rename(folder / "images" / name)
        (folder / "images" / name).write_bytes(b"")  # unreadable too, so its name must be printed
        return Path("part_0.png\\nOK")  # shown escaped, on the error line itself

    case("empty dataset", None, empty)
    case("truncated COCO annotations", None, truncated_coco)
    case("junk COCO annotations (HTML)", None, junk_coco)
    case("COCO file_name outside the dataset", None, coco_outside)
    case("COCO polygon beyond int32", None, coco_far_polygon)
    case("COCO RLE shorter than the image", None, coco_short_rle)
    case("COCO annotations nested 100000 deep", None, coco_nested)
    case("file name with a newline", None, newline_name)
    case("zero-byte image", None, zero_byte)
    case("truncated image", None, truncated)
    case("mislabelled image (text named .png)", None, mislabelled)
    case("colour mask (mislabelled mask)", None, colour_mask)
    case("mask of the wrong size", None, wrong_size_mask)
    case("image without a mask", None, unmasked)
    case("no object in any mask", None, no_objects)
    case("not a dataset", None, not_a_dataset)
    return out


# ------------------------------------------------------------------------------------ checkpoints
def bad_checkpoints(root: Path, good: Path, marker: Path) -> list[Input]:
    import torch

    root.mkdir(parents=True, exist_ok=True)
    out = []
    rng = np.random.default_rng(0)
    (root / "random.pth").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    out.append(Input("checkpoint", "random bytes", root / "random.pth", "random.pth"))
    (root / "zero.pth").write_bytes(b"")
    out.append(Input("checkpoint", "zero-byte", root / "zero.pth", "zero.pth"))
    data = good.read_bytes()
    (root / "truncated.pth").write_bytes(data[: len(data) // 2])
    out.append(Input("checkpoint", "truncated", root / "truncated.pth", "truncated.pth"))
    torch.save({"image_encoder.x": PayloadMarker(marker)}, root / "code_zip.pth")
    out.append(Input("checkpoint", "code-executing (zip)", root / "code_zip.pth", "code_zip.pth"))
    with open(root / "code_pickle.pth", "wb") as f:
        pickle.dump({"model": PayloadMarker(marker)}, f)
    out.append(Input("checkpoint", "code-executing (pickle)", root / "code_pickle.pth", "code_pickle.pth"))
    torch.save({"fc.weight": torch.zeros(4, 4)}, root / "not_sam.pth")
    out.append(Input("checkpoint", "not a SAM model", root / "not_sam.pth", "not_sam.pth"))
    state = torch.load(good, weights_only=True)
    arch = json.loads(state["edgesam_arch"])
    state["edgesam_arch"] = json.dumps({**arch, "depth": arch["depth"] - 2})  # records fewer blocks than it holds
    torch.save(state, root / "wrong_arch.pth")
    out.append(Input("checkpoint", "wrong architecture", root / "wrong_arch.pth", "wrong_arch.pth"))
    for name, record in (("arch_size_text", json.dumps({**arch, "image_size": "abc"})),
                         ("arch_size_huge", json.dumps({**arch, "image_size": 131072})),
                         ("arch_a_list", json.dumps([arch])), ("arch_not_json", "{variant: vit_t")):
        torch.save({**state, "edgesam_arch": record}, root / f"{name}.pth")
    torch.save({"image_encoder.blocks.0.attn.qkv.lora_A.default.weight": torch.zeros(2, 2)}, root / "adapter.pth")
    out.append(Input("checkpoint", "unmerged adapter", root / "adapter.pth", "adapter.pth"))
    out.append(Input("checkpoint", "recorded image_size not a number", root / "arch_size_text.pth", "image_size"))
    out.append(Input("checkpoint", "recorded image_size of 131072", root / "arch_size_huge.pth", "image_size"))
    out.append(Input("checkpoint", "recorded architecture a list", root / "arch_a_list.pth", "edgesam_arch"))
    out.append(Input("checkpoint", "recorded architecture not JSON", root / "arch_not_json.pth", "edgesam_arch"))
    (root / "random.safetensors").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    out.append(Input("checkpoint", "random bytes (.safetensors)", root / "random.safetensors", "random.safetensors"))
    diverged = {k: v.clone() for k, v in state.items() if isinstance(v, torch.Tensor)}
    diverged["image_encoder.pos_embed"].fill_(float("nan"))  # a run that diverged: NaN answers, NaN in JSON
    torch.save({**diverged, "edgesam_arch": state["edgesam_arch"]}, root / "nan_weights.pth")
    out.append(Input("checkpoint", "NaN weights", root / "nan_weights.pth", "NaN or infinite"))
    return out


# ---------------------------------------------------------------------------------------- bundles
def bad_bundles(root: Path, good: Path) -> list[Input]:
    from edgesam_runtime.manifest import MANIFEST_NAME
    from edgesam_runtime.files import sha256_file

    out = []

    def variant(name, culprit, change):
        folder = root / name.split(" (")[0].replace(" ", "_")
        shutil.copytree(good, folder, copy_function=os.link)  # changes below replace files, never edit them
        manifest_path = folder / MANIFEST_NAME
        manifest = json.loads(manifest_path.read_text())
        target = change(folder, manifest) or folder
        if manifest:
            _replace(manifest_path, json.dumps(manifest).encode())
        out.append(Input("bundle", name, folder, culprit or Path(target).name))

    def rehash(folder, manifest):
        for part in ("encoder", "decoder"):
            entry = manifest["graphs"]["fp32"][part]
            entry["sha256"] = sha256_file(folder / entry["file"])

    def tampered(folder, manifest):
        graph = folder / manifest["graphs"]["fp32"]["encoder"]["file"]
        data = bytearray(graph.read_bytes())
        data[len(data) // 2] ^= 0xFF
        _replace(graph, bytes(data))
        return graph

    def truncated_graph(folder, manifest):
        graph = folder / manifest["graphs"]["fp32"]["decoder"]["file"]
        _replace(graph, graph.read_bytes()[:1000])
        rehash(folder, manifest)  # hashes that match: only the graph itself can tell
        return graph

    def truncated_manifest(folder, manifest):
        text = (folder / MANIFEST_NAME).read_bytes()
        _replace(folder / MANIFEST_NAME, text[: len(text) // 2])
        manifest.clear()
        return folder / MANIFEST_NAME

    def mismatched(folder, manifest):
        encoder, decoder = (manifest["graphs"]["fp32"][p]["file"] for p in ("encoder", "decoder"))
        os.replace(folder / encoder, folder / "swap.tmp")
        os.replace(folder / decoder, folder / encoder)
        os.replace(folder / "swap.tmp", folder / decoder)
        rehash(folder, manifest)  # graphs swapped, hashes consistent: their inputs give them away
        return folder / encoder

    def missing_manifest(folder, manifest):
        (folder / MANIFEST_NAME).unlink()
        manifest.clear()
        return folder / MANIFEST_NAME

    def missing_graph(folder, manifest):
        graph = folder / manifest["graphs"]["fp32"]["decoder"]["file"]
        graph.unlink()
        return graph

    def future_format(folder, manifest):
        manifest["format_version"] = 99
        return folder / MANIFEST_NAME

    def raw_manifest(data: bytes):
        def change(folder, manifest):
            _replace(folder / MANIFEST_NAME, data)
            manifest.clear()
            return folder / MANIFEST_NAME
        return change

    def field(path, value, culprit_file=None):
        def change(folder, manifest):
            target = manifest
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            return folder / MANIFEST_NAME
        return change

    def outside_link(folder, manifest):
        (folder / "encoder.link.onnx").symlink_to(Path("/etc/passwd"))
        manifest["graphs"]["fp32"]["encoder"]["file"] = "encoder.link.onnx"

    good_text = (good / MANIFEST_NAME).read_text()
    variant("graph file an absolute path", "graphs.fp32.encoder.file", field(ENCODER + ["file"], "/etc/passwd"))
    variant("graph file outside the bundle (..)", "graphs.fp32.encoder.file",
            field(ENCODER + ["file"], "../../../../etc/passwd"))
    variant("graph file a link leading outside", "encoder.link.onnx", outside_link)
    variant("external data outside the bundle", "external_data[0].file",
            field(ENCODER + ["external_data"], [{"file": "../../../../etc/passwd", "sha256": "0" * 64}]))
    variant("graph file a number", "graphs.fp32.encoder.file", field(ENCODER + ["file"], 123))
    variant("pixel_std of zeros", "preprocess.pixel_std", field(["preprocess", "pixel_std"], [0, 0, 0]))
    variant("one-value pixel_mean", "preprocess.pixel_mean", field(["preprocess", "pixel_mean"], [120.0]))
    variant("max_points not a number", "prompts.max_points", field(["prompts", "max_points"], "x"))
    variant("image_size not a number", "model.image_size", field(["model", "image_size"], "abc"))
    variant("image_size of 131072", "model.image_size", field(["model", "image_size"], 131072))
    variant("manifest a list", MANIFEST_NAME, raw_manifest(b"[1, 2, 3]\n"))
    variant("manifest not UTF-8", MANIFEST_NAME, raw_manifest(good_text.replace('"fp32"', '"fp\xff32"', 1).encode("latin-1")))
    variant("manifest nested 100000 deep (JSON bomb)", MANIFEST_NAME, raw_manifest(b"[" * 100000 + b"]" * 100000))
    variant("manifest with a 5000-digit number", MANIFEST_NAME,
            raw_manifest(good_text.replace('"format_version": 1', '"format_version": 1' + "0" * 5000).encode()))
    variant("manifest with NaN", MANIFEST_NAME, raw_manifest(good_text.replace("58.395", "NaN", 1).encode()))
    variant("tampered graph", None, tampered)
    variant("truncated graph", None, truncated_graph)
    variant("truncated manifest", None, truncated_manifest)
    variant("mismatched graphs", None, mismatched)
    variant("missing manifest", None, missing_manifest)
    variant("missing graph", None, missing_graph)
    variant("future format version", "format_version", future_format)
    return out


ENCODER = ["graphs", "fp32", "encoder"]


def _replace(path: Path, data: bytes) -> None:
    """Write `data` as a new file at `path` (the old one may be a hard link to the good bundle's)."""
    path.unlink()
    path.write_bytes(data)


# ---------------------------------------------------------------------------------------- prompts
def bad_prompts(root: Path) -> list[Input]:
    """Prompts for the test picture (64 wide, 48 high), as flags or as a JSON prompt file."""
    root.mkdir(parents=True, exist_ok=True)
    out = []

    def flags(name, culprit, *args):
        out.append(Input("prompts", name, None, culprit, args))

    def file(name, culprit, text):
        path = root / (name.replace(" ", "_").replace("(", "").replace(")", "") + ".json")
        path.write_text(text)
        out.append(Input("prompts", name, path, culprit or path.name, ("--prompts", str(path))))

    box = {"type": "box", "data": [5, 5, 30, 30]}
    flags("NaN box (flag)", "--box 'nan,2,30,30'", "--box", "nan,2,30,30")
    file("NaN point (file)", "prompts", '[{"type": "point", "data": [NaN, 3], "label": 1}]')
    flags("inverted box (flag)", "--box '40,30,10,5': expected x0 <= x1", "--box", "40,30,10,5")
    flags("point outside the image (flag)", "points: coordinate [70.0, 10.0] lies outside", "--point", "70,10")
    file("box outside the image (file)", "boxes: coordinate", json.dumps([{"type": "box", "data": [-5, 0, 20, 60]}]))
    file("too many boxes (file)", "at most 4", json.dumps([box] * (BUNDLE_MAX_BOXES + 1)))
    file("too many points (file)", "at most 4",
         json.dumps([{"type": "point", "data": [10 + i, 10], "label": 1} for i in range(BUNDLE_MAX_POINTS + 1)]))
    file("bad point label (file)", "label", '[{"type": "point", "data": [3, 4], "label": 3}]')
    file("not JSON (file)", None, "box 5 5 30 30\n")
    file("nested 100000 deep (file)", None, "[" * 100000 + "]" * 100000)
    file("number out of range (file)", None, '[{"type": "box", "data": [5, 5, 30, 1e999]}]')
    latin = root / "not_UTF-8_file.json"
    latin.write_bytes('[{"type": "box", "data": [5, 5, 30, 30], "note": "\xe9"}]'.encode("latin-1"))
    out.append(Input("prompts", "not UTF-8 (file)", latin, latin.name, ("--prompts", str(latin))))
    file("not a list (file)", None, '{"type": "box", "data": [5, 5, 30, 30]}')
    return out


TOO_MANY = ("too many boxes (file)", "too many points (file)")  # limits of a bundle, not of the torch model


# --------------------------------------------------------------------------------------- run dirs
def bad_run_dirs(root: Path, good_checkpoint: Path) -> list[Input]:
    from edgesam_runtime.files import sha256_file

    out = []

    def run_dir(name, culprit, record=None, weights=None):
        folder = root / name.replace(" ", "_")
        (folder / "adapter").mkdir(parents=True)
        if record is not None:
            (folder / "adapter" / META).write_text(record)
        if weights is not None:
            (folder / "adapter" / EXTRA_WEIGHTS).write_bytes(weights)
        out.append(Input("run_dir", name, folder, culprit))

    from edgesam.models import arch_for
    from edgesam.train.adapter import EXTRA_WEIGHTS, FORMAT, META

    # a well-formed record (the base's own architecture), so each input below has exactly one culprit
    meta = {"format": FORMAT, "strategy": "decoder", "init": "random", "base_checkpoint": str(good_checkpoint),
            "base_sha256": sha256_file(good_checkpoint), "arch": arch_for("vit_t", IMAGE_SIZE).to_dict(),
            "weights": [EXTRA_WEIGHTS]}
    run_dir("no adapter", META)
    run_dir("adapter record not JSON", META, record="{not json", weights=b"")
    run_dir("truncated adapter weights", EXTRA_WEIGHTS, record=json.dumps(meta), weights=b"\x10\x00")
    run_dir("another base", "sha256", record=json.dumps({**meta, "base_sha256": "0" * 64}), weights=_tensors())
    run_dir("adapter record a list", META, record=json.dumps([meta]), weights=_tensors())
    run_dir("adapter weights outside the run", "weights[0]",
            record=json.dumps({**meta, "weights": ["../../../../etc/passwd"]}), weights=_tensors())
    return out


def _tensors() -> bytes:
    import torch
    from safetensors.torch import save

    return save({"mask_decoder.iou_token.weight": torch.zeros(1, 256)})


# ------------------------------------------------------------------------ image folders and specs
def image_folders(root: Path, good_image: Path) -> list[Input]:
    """Folders of line images (what `calib build` reads): one good image and one bad, or nothing."""
    out = []
    for bad in bad_images(root / "_bad"):
        folder = root / bad.path.stem
        folder.mkdir(parents=True)
        shutil.copyfile(good_image, folder / "good.png")
        shutil.copyfile(bad.path, folder / bad.path.name)
        out.append(Input("images_folder", bad.name, folder, bad.culprit))
    (root / "empty").mkdir()
    out.append(Input("images_folder", "empty folder", root / "empty", "empty"))
    return out


def bad_specs(root: Path, datasets: Path) -> list[Input]:
    """Pipeline specs: broken YAML, an unknown field, and a valid spec over a broken dataset."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "broken.yaml").write_text("model: vit_t\nfinetune: {epochs: 1\n")
    (root / "unknown_field.yaml").write_text("model: vit_t\nepochs: 3\n")
    (root / "bad_data.yaml").write_text(f"model: vit_t\nimage_size: 64\ndata: {datasets / 'truncated_image'}\n"
                                        "finetune: {epochs: 1}\n")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9))
    (root / "alias_bomb.yaml").write_text(bomb)  # a billion values from ten lines
    (root / "latin1.yaml").write_bytes("model: vit_t\nnote: caf\xe9\n".encode("latin-1"))
    (root / "deep.yaml").write_text("model: " + "[" * 5000 + "]" * 5000 + "\n")
    (root / "not_a_mapping.yaml").write_text("- model: vit_t\n")
    return [Input("spec", "YAML alias bomb", root / "alias_bomb.yaml", "alias_bomb.yaml"),
            Input("spec", "not UTF-8", root / "latin1.yaml", "latin1.yaml"),
            Input("spec", "nested 5000 deep", root / "deep.yaml", "deep.yaml"),
            Input("spec", "a list, not a mapping", root / "not_a_mapping.yaml", "not_a_mapping.yaml"),
            Input("spec", "broken YAML", root / "broken.yaml", "broken.yaml"),
            Input("spec", "unknown field", root / "unknown_field.yaml", "epochs"),
            Input("spec", "spec over a broken dataset", root / "bad_data.yaml", "part_1.png")]


CATALOG = {
    "image": ("zero-byte image", "truncated image", "mislabelled image (text named .png)", "float image (unsupported mode)",
              "30x5000 frame", "decompression bomb (60000x60000 header)"),
    "images_folder": ("zero-byte image", "truncated image", "mislabelled image (text named .png)",
                      "float image (unsupported mode)", "30x5000 frame", "decompression bomb (60000x60000 header)",
                      "empty folder"),
    "dataset": ("empty dataset", "zero-byte image", "truncated image", "mislabelled image (text named .png)",
                "colour mask (mislabelled mask)", "mask of the wrong size", "image without a mask",
                "no object in any mask", "not a dataset", "truncated COCO annotations", "junk COCO annotations (HTML)",
                "COCO file_name outside the dataset", "COCO polygon beyond int32", "COCO RLE shorter than the image",
                "COCO annotations nested 100000 deep", "file name with a newline"),
    "checkpoint": ("random bytes", "zero-byte", "truncated", "code-executing (zip)", "code-executing (pickle)",
                   "not a SAM model", "wrong architecture", "unmerged adapter", "random bytes (.safetensors)",
                   "recorded image_size not a number", "recorded image_size of 131072", "recorded architecture a list",
                   "recorded architecture not JSON", "NaN weights"),
    "bundle": ("tampered graph", "truncated graph", "truncated manifest", "mismatched graphs", "missing manifest",
               "missing graph", "future format version", "graph file an absolute path",
               "graph file outside the bundle (..)", "graph file a link leading outside", "external data outside the bundle",
               "graph file a number", "pixel_std of zeros", "one-value pixel_mean", "max_points not a number",
               "image_size not a number", "image_size of 131072", "manifest a list", "manifest not UTF-8",
               "manifest nested 100000 deep (JSON bomb)", "manifest with a 5000-digit number", "manifest with NaN"),
    "prompts": ("NaN box (flag)", "NaN point (file)", "inverted box (flag)", "point outside the image (flag)",
                "box outside the image (file)", "too many boxes (file)", "too many points (file)",
                "bad point label (file)", "not JSON (file)", "not a list (file)", "nested 100000 deep (file)",
                "number out of range (file)", "not UTF-8 (file)"),
    "run_dir": ("no adapter", "adapter record not JSON", "truncated adapter weights", "another base",
                "adapter record a list", "adapter weights outside the run"),
    "spec": ("broken YAML", "unknown field", "spec over a broken dataset", "YAML alias bomb", "not UTF-8",
             "nested 5000 deep", "a list, not a mapping"),
}
