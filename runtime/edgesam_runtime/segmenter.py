"""`Segmenter`: prompted segmentation from a bundle, with numpy and onnxruntime (or OpenVINO, TensorRT) only.

    seg = Segmenter.open("bundle/")                    # verifies manifest, hashes and graph I/O; warms up
    emb = seg.encode(image)                            # any HxW gray/RGB/RGBA, uint8 or uint16
    res = seg.segment(emb, boxes=[[10, 20, 80, 90], [100, 40, 160, 120]])   # many boxes, one decoder call
    res.masks  # (B, 1, H, W) bool at the original size; res.scores (B, 1); res.low_res_logits
    res = seg.segment(emb, boxes=boxes, crop=True)     # masks cropped to their windows: res.masks[k] (1, h, w)
    res.offsets[k]  # (x0, y0) of res.masks[k] in the frame; res.full_masks() pastes them back

Limits (`edgesam_runtime.limits.Limits`: frame pixels, prompt sets per call, a memory estimate per
call) are checked before anything large is allocated; a call over one raises `InvalidInputError`.

All geometry is `edgesam_runtime.geometry` and `edgesam_runtime.roi`, the same code the torch predictor uses. A bundle
whose model frames its input around each box (ROI framing, recorded in the manifest) keeps the frame
in `encode` and, in `segment`, cuts one crop per box, encodes the crops batched and maps each crop's
masks back into the frame: the same calls, no extra flags. A bundle with a mask refiner (manifest
`refiner`) draws each mask on the refiner's finer grid: its graph runs after the decoder, on the set's backend
(OpenVINO beside OpenVINO, else ONNX Runtime). Calls are thread-safe: the segmenter holds
no mutable state after `open`, and the backends serialise what they must.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgesam_runtime import geometry, io_spec, roi
from edgesam_runtime import crops, inputs
from edgesam_runtime.backends.choice import FORMAT_BACKENDS, auto_choice, openvino_precision
from edgesam_runtime.bundle import BundleInfo, fixed_prompt_axes, load_bundle, verify_io
from edgesam_runtime.errors import BackendError, BundleError, InvalidInputError, RuntimeErrorBase
from edgesam_runtime.limits import Limits, full_mask_bytes
from edgesam_runtime.threads import MAX_THREADS, ThreadChoice, choose_threads
from edgesam_runtime.timing import ms_since
from edgesam_runtime.prediction import Prediction, select_outputs

BACKENDS = ("auto", "onnxruntime", "openvino", "tensorrt")
PERFORMANCE = ("latency", "throughput")
ENCODER_CHUNK = 16  # ROI crops per encoder call (activation memory grows with the batch)


@dataclass(frozen=True)
class Embedding:
    """One encoded image: features (1, C, e, e) float32 plus the geometry needed to map prompts.

    With a ROI-framed bundle the encoder runs per box in `segment`: `features` is None and `frame`
    holds the image (HxWx3 uint8) the crops are cut from.
    """

    features: np.ndarray | None
    original_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    image_size: int
    timings: dict = field(default_factory=dict, compare=False)  # preprocess_ms, encoder_ms
    frame: np.ndarray | None = field(default=None, compare=False, repr=False)
    image_input: np.ndarray | None = field(default=None, compare=False, repr=False)  # kept for a refiner


@dataclass
class Result(Prediction):
    """`Prediction` (masks (B, M, H, W), scores (B, M), low_res_logits) plus per-call timings in ms.

    From `segment(..., crop=True)`: `masks` is a tuple of B bool arrays (M, h_k, w_k), each the window
    of the frame its prompt set's masks can occupy (see `edgesam_runtime.crops`), `offsets` (B, 2) the
    (x0, y0) of each window's top-left pixel in the frame; every pixel outside it is False.
    """

    timings: dict = field(default_factory=dict)
    offsets: np.ndarray | None = None  # (B, 2) int64 x0, y0 of cropped masks; None for full-frame masks
    frame_hw: tuple[int, int] | None = None

    @property
    def cropped(self) -> bool:
        return self.offsets is not None

    def full_masks(self) -> np.ndarray:
        """(B, M, H, W) bool masks in the frame (cropped ones pasted back; costs the full frames)."""
        return crops.paste(self.masks, self.offsets, self.frame_hw) if self.cropped else self.masks

    def best(self) -> Prediction:
        """Per prompt set, the mask with the highest predicted IoU (cropped masks stay cropped)."""
        if not self.cropped:
            return super().best()
        idx = self.scores.argmax(axis=1)
        rows = np.arange(len(idx))
        return Result(tuple(m[i:i + 1] for m, i in zip(self.masks, idx)), self.scores[rows, idx][:, None],
                      self.low_res_logits[rows, idx][:, None], dict(self.timings), self.offsets, self.frame_hw)


class Segmenter:
    def __init__(self, info: BundleInfo, backend, graph_io: dict, limits: Limits | None = None, refiner=None,
                 threads: ThreadChoice | None = None):
        self.info = info
        self.threads = threads  # how many intra-op threads the backend runs with, and why
        self.backend = backend
        self.limits = limits or Limits()
        self.refiner = refiner  # the mask refiner's graph (edgesam_runtime.backends.ort.OrtGraph) or None
        self._fixed = fixed_prompt_axes(graph_io)
        self._limits = backend.shape_limits()
        self._dtypes = {name: np.dtype(dt) for part in graph_io.values() for name, (dt, _) in part[0].items()}
        # ROI crops per encoder call: bounded for memory and by an engine's batch profile
        crops_limit = self._limits.get(io_spec.NUM_CROPS, (1, ENCODER_CHUNK))[1]
        self._encoder_chunk = max(1, min(ENCODER_CHUNK, crops_limit))

    @classmethod
    def open(cls, bundle_dir, graph_set: str = "fp32", backend: str = "auto", providers=None,
             threads: int | None = None, warmup: bool = True, limits: Limits | None = None,
             performance: str = "latency", static_shapes: int | None = None) -> "Segmenter":
        """Validate the bundle and its `graph_set`, start the backend, and (by default) warm it up.

        `backend`: "onnxruntime", "openvino", "tensorrt", or "auto" (the format's only backend, else the
        fastest installed one for ONNX graphs: see `edgesam_runtime.backends.choice`; the reason is
        `segmenter.backend.choice`). `threads`: a positive integer, or None for the process's choice
        (`edgesam_runtime.threads`: $EDGESAM_THREADS, else every usable core); `segmenter.threads` says which.
        `limits`: per-call limits (`edgesam_runtime.limits.Limits`; defaults when None). `performance`:
        "latency" (one line camera: each call uses every thread) or "throughput" (several cameras calling
        at once: OpenVINO runs parallel streams; ONNX Runtime's one session serves concurrent calls alike).
        `static_shapes` (OpenVINO): how many input shapes (box counts) per graph get a static compilation
        beside the dynamic one, compiled at a shape's first call (0.2-0.4 s per graph, once): faster calls
        for more memory (30-100 MB per box count for a ROI model); None: `backends.ov.STATIC_SHAPES`, 0:
        dynamic only. Other backends have no use for it."""
        if limits is not None and not isinstance(limits, Limits):
            raise InvalidInputError(f"limits: expected an edgesam_runtime.limits.Limits, got {type(limits).__name__}")
        _check_threads(threads)
        _check_static_shapes(static_shapes)
        if performance not in PERFORMANCE:
            raise InvalidInputError(f"performance: expected one of {PERFORMANCE}, got {performance!r}")
        try:
            chosen = choose_threads(threads)
        except ValueError as exc:  # a bad $EDGESAM_THREADS
            raise InvalidInputError(str(exc)) from None
        info = load_bundle(bundle_dir, graph_set)
        impl = _make_backend(info, backend, providers, chosen.threads, performance, static_shapes)
        graph_io = impl.io()
        refiner = _open_refiner(info, impl, chosen.threads)
        if refiner is not None:
            graph_io["refiner"] = refiner.io()
        verify_io(info, graph_io)
        seg = cls(info, impl, graph_io, limits, refiner, chosen)
        if warmup:
            seg.warmup()
        return seg

    # -- properties line software asks for -------------------------------------------------------
    @property
    def image_size(self) -> int:
        return self.info.image_size

    @property
    def providers(self) -> list[str]:
        return list(self.backend.providers)

    def warmup(self) -> None:
        """One encoder and one decoder call, so the first line image does not pay for allocation."""
        side = self.image_size
        emb = self.encode(np.zeros((side, side), np.uint8))
        self.segment(emb, boxes=[[0, 0, side / 2, side / 2]])

    # -- encoder ----------------------------------------------------------------------------------
    def encode(self, image: np.ndarray) -> Embedding:
        """Encode a frame once for any number of `segment` calls (ROI framing: keep it for the crops)."""
        image = inputs.check_image(image)
        self.limits.check_frame(image, self.info.framing.roi)
        start = time.perf_counter()
        try:
            if self.info.framing.roi:
                frame = geometry.to_rgb_uint8(image)
                if np.may_share_memory(frame, image):  # keep a copy: line software reuses camera buffers
                    frame = frame.copy()
                frame.setflags(write=False)
                hw = frame.shape[:2]
                return Embedding(None, hw, hw, self.image_size, {"preprocess_ms": ms_since(start), "encoder_ms": 0.0}, frame)
            x, original_hw, resized_hw = geometry.preprocess(image, self.image_size, self.info.pixel_mean, self.info.pixel_std)
        except geometry.GeometryError as exc:
            raise InvalidInputError(str(exc)) from None
        pre_ms = ms_since(start)
        start = time.perf_counter()
        features = self.run_encoder(x)
        features.setflags(write=False)  # shared by concurrent segment calls: keep it immutable
        kept = None
        if self.refiner is not None:
            kept = x
            kept.setflags(write=False)
        return Embedding(features, tuple(original_hw), tuple(resized_hw), self.image_size,
                         {"preprocess_ms": pre_ms, "encoder_ms": ms_since(start)}, image_input=kept)

    def run_encoder(self, x: np.ndarray) -> np.ndarray:
        """(n, 3, S, S) encoder inputs -> (n, C, e, e) float32; ROI crops go in chunks the graph allows."""
        chunk = self._encoder_chunk
        parts = [self.backend.run_encoder(self._cast(io_spec.ENCODER_INPUT, x[i:i + chunk])) for i in range(0, len(x), chunk)]
        return np.asarray(np.concatenate(parts) if len(parts) > 1 else parts[0], dtype=np.float32)

    # -- decoder ----------------------------------------------------------------------------------
    def segment(self, embedding: Embedding, points=None, labels=None, boxes=None, mask_input=None,
                multimask: bool = False, crop: bool = False) -> Result:
        """Masks for B prompt sets in one decoder call (B boxes, or B point sets; points + boxes combine).

        Coordinates are original-image pixels. `mask_input`: (B, 1, 4h, 4w) low-res logits from an
        earlier call (not for a model that takes its box as the dense prompt). Returns masks
        (B, M, H, W) bool, scores (B, M), low-res logits; M = 3 with `multimask`, else 1. With `crop`,
        masks come cropped to their windows, with `offsets` (see `Result`): many boxes on a large frame
        then cost their windows, not B full frames. A ROI-framed bundle needs a box per prompt set; its
        timings include the crops' preprocess and encoder time.
        """
        start = time.perf_counter()
        self._check_embedding(embedding)
        hw = embedding.original_hw
        pts, lab = inputs.check_points(points, labels, hw, self.info.max_points)
        box = inputs.check_boxes(boxes, hw, self.info.max_boxes)
        if pts is None and box is None:
            raise InvalidInputError("segment: give points (with labels), boxes, or both")
        self.limits.check_prompt_sets(len(box) if box is not None else (len(pts) if pts.ndim == 3 else 1))
        prepared = self._prepare(embedding, pts, lab, box, mask_input)
        masks_per_set = 3 if multimask else 1
        self._check_mask_memory(prepared, hw, masks_per_set, crop)
        timings = {"prompt_ms": ms_since(start)}
        features = embedding.features
        if prepared.images is not None:
            start = time.perf_counter()
            features = self.run_encoder(prepared.images)
            timings["encoder_ms"] = ms_since(start)
        start = time.perf_counter()
        low_res, iou = self.decode(embedding, prepared.coords, prepared.labels, prepared.mask_input, features)
        timings["decoder_ms"] = ms_since(start)
        start = time.perf_counter()
        low_res, iou = select_outputs(low_res, iou, multimask)
        logits = low_res
        if self.refiner is not None:
            timings["decoder_ms"] += ms_since(start)  # selection time, negligible, stays with the decoder
            start = time.perf_counter()
            logits = self.refine(embedding.image_input if prepared.images is None else prepared.images, low_res)
            timings["refiner_ms"] = ms_since(start)
            start = time.perf_counter()
        offsets = None
        if crop and prepared.windows is not None:
            masks, offsets = crops.roi_crops(logits, prepared.windows, hw, self.image_size, self.limits)
        elif crop:
            masks, offsets = crops.image_crops(logits, hw, self.image_size, self.limits)
        elif prepared.windows is not None:
            masks = roi.paste_masks(logits, prepared.windows, hw, self.image_size)
        else:
            masks = geometry.upscale_masks(logits, hw, self.image_size)
        timings["postprocess_ms"] = ms_since(start)
        return Result(masks=masks, scores=iou, low_res_logits=low_res, timings=timings, offsets=offsets,
                      frame_hw=tuple(hw))

    def _check_mask_memory(self, prepared: roi.ModelInputs, hw, masks_per_set: int, crop: bool) -> None:
        """Before the decoder runs: full-frame masks must fit the limit; cropped ones are checked as
        their windows become known, after the one transient full-frame block checked here."""
        count = prepared.coords.shape[0]
        side = None if prepared.windows is None else int(np.max(prepared.windows[:, 2]))
        if crop:
            need = full_mask_bytes(0, masks_per_set, hw, side)
            self.limits.check_bytes("segment", need * masks_per_set if side is None else need, "upscaling one mask")
            return
        self.limits.check_bytes("segment", full_mask_bytes(count, masks_per_set, hw, side),
                                f"{count} x {masks_per_set} full-frame masks of {hw[1]}x{hw[0]}")

    def refine(self, images: np.ndarray, low_res: np.ndarray) -> np.ndarray:
        """(B, M, m, m) selected low-res logits -> (B, M, G, G) on the refiner's grid; `images` is the
        encoder input: one image for every mask, or one crop per prompt set."""
        b, k = low_res.shape[:2]
        if images.shape[0] == b:
            images = np.repeat(images, k, axis=0) if k > 1 else images
        else:
            images = np.broadcast_to(images, (b * k,) + images.shape[1:])
        flat = np.ascontiguousarray(low_res.reshape(b * k, 1, *low_res.shape[-2:]), dtype=np.float32)
        image_name, masks_name = io_spec.REFINER_INPUTS
        out = self.refiner.run({image_name: np.ascontiguousarray(images, dtype=np.float32), masks_name: flat})[0]
        return np.asarray(out, dtype=np.float32).reshape(b, k, *out.shape[-2:])

    def _prepare(self, embedding: Embedding, pts, lab, box, mask_input) -> roi.ModelInputs:
        """Prompts (and ROI crops) in the model's frames, as the bundle's model was trained to take them."""
        framing = self.info.framing
        if mask_input is not None and framing.dense_box:
            raise InvalidInputError("mask_input: this bundle's model takes its box as the dense mask prompt; "
                                    "leave mask_input out")
        try:
            if framing.roi:
                return roi.roi_inputs(embedding.frame, pts, lab, box, framing, self.image_size,
                                      self.info.pixel_mean, self.info.pixel_std)
            prepared = roi.image_inputs(pts, lab, box, framing, embedding.original_hw, self.image_size)
        except geometry.GeometryError as exc:
            raise InvalidInputError(str(exc)) from None
        if mask_input is not None:
            prepared.mask_input = inputs.check_mask_input(mask_input, prepared.coords.shape[0], self.info.low_res_size)
        return prepared

    def segment_image(self, image: np.ndarray, prompts, multimask: bool = False, crop: bool = False) -> Result:
        """One-shot encode + segment; `prompts` in the JSON prompt-file form (list, JSON text or path)."""
        points, labels, boxes = inputs.parse_prompts(prompts)
        return self.segment(self.encode(image), points, labels, boxes, multimask=multimask, crop=crop)

    def decode(self, embedding: Embedding, coords: np.ndarray, labels: np.ndarray, mask_input=None, features=None):
        """Decoder on prepared (B, N, 2) coords / (B, N) labels in the model's frame -> all 4 outputs.

        `features`: the embedding's (default) or, for ROI framing, one per prompt set (B, C, e, e).
        """
        batch, count = coords.shape[:2]
        self._check_prompt_shape(batch, count)
        feeds = io_spec.decoder_feeds(embedding.features if features is None else features, coords, labels, mask_input)
        low_res, iou = self.backend.run_decoder({k: self._cast(k, v) for k, v in feeds.items()})
        return np.asarray(low_res, dtype=np.float32), np.asarray(iou, dtype=np.float32)

    # -- checks -----------------------------------------------------------------------------------
    def _cast(self, name: str, arr: np.ndarray) -> np.ndarray:
        dtype = self._dtypes.get(name, np.dtype(np.float32))
        return np.ascontiguousarray(arr, dtype=dtype)

    def _check_embedding(self, embedding) -> None:
        if not isinstance(embedding, Embedding):
            raise InvalidInputError(f"embedding: expected an Embedding from Segmenter.encode, got {type(embedding).__name__}")
        if self.info.framing.roi:
            if embedding.frame is None or embedding.image_size != self.image_size:
                raise InvalidInputError("embedding: this bundle cuts a crop per box from the frame; pass the "
                                        "Embedding its own encode() returned (an embedding from another bundle?)")
            return
        e = self.info.embedding_size
        want = (1, self.info.embed_channels, e, e)
        if (embedding.features is None or embedding.image_size != self.image_size
                or tuple(embedding.features.shape) != want):
            raise InvalidInputError(
                f"embedding: features of shape {None if embedding.features is None else tuple(embedding.features.shape)} "
                f"at image size {embedding.image_size}; "
                f"this bundle expects {want} at {self.image_size} (an embedding from another bundle?)")

    def _check_prompt_shape(self, batch: int, count: int) -> None:
        for axis, size in ((io_spec.NUM_PROMPTS, batch), (io_spec.NUM_POINTS, count)):
            fixed = self._fixed.get(axis)
            if fixed is not None and size != fixed:
                raise InvalidInputError(f"prompts: this bundle's decoder is static with {axis}={fixed}; got {size} "
                                        "(points per set include box corners and one padding point)")
            limit = self._limits.get(axis)
            if limit is not None and not (limit[0] <= size <= limit[1]):
                raise InvalidInputError(f"prompts: {axis}={size} is outside the engine profile [{limit[0]}, {limit[1]}] "
                                        "(points per set include box corners and one padding point)")


def _open_refiner(info: BundleInfo, impl, threads):
    """The refiner's graph where the bundle has one: on OpenVINO beside an OpenVINO set, in the float
    precision of the set's decoder (bf16 float parts of an int8 set run it in bf16); else on ONNX Runtime
    with an ONNX Runtime backend's providers, or on the CPU beside TensorRT."""
    if info.refiner_file is None:
        return None
    if impl.name == "openvino":
        return impl.open_refiner(info.refiner_file, openvino_precision(info.entry("decoder")))
    from edgesam_runtime.backends.ort import OrtGraph

    providers = impl.providers if impl.name == "onnxruntime" else ["CPUExecutionProvider"]
    return OrtGraph(info.refiner_file, providers, threads)


def _check_static_shapes(static_shapes) -> None:
    if static_shapes is None:
        return
    if not isinstance(static_shapes, (int, np.integer)) or isinstance(static_shapes, bool) or static_shapes < 0:
        raise InvalidInputError(f"static_shapes: expected a non-negative integer or None (the default), got {static_shapes!r}")


def _check_threads(threads) -> None:
    if threads is None:
        return
    if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or not 1 <= threads <= MAX_THREADS:
        raise InvalidInputError(f"threads: expected a positive integer (at most {MAX_THREADS}) or None (the backend's choice), "
                                f"got {threads!r}")


def _make_backend(info: BundleInfo, backend: str, providers, threads, performance: str = "latency",
                  static_shapes: int | None = None):
    """Start the backend for the graph set: the one asked for, or with "auto" the one
    `backend_choice.choose_backend` picks; the reason is kept on the backend as `choice`."""
    if backend not in BACKENDS:
        raise InvalidInputError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    formats = {info.entry(part)["format"] for part in ("encoder", "decoder")}
    if len(formats) != 1 or not formats <= set(FORMAT_BACKENDS):
        raise BundleError(f"{info.path}: graph set {info.graph_set!r} mixes or has unknown formats {sorted(formats)}")
    fmt = formats.pop()
    if backend == "auto":
        backend, reason = auto_choice(info.manifest, info.graph_set, providers)
    elif backend not in FORMAT_BACKENDS[fmt]:
        raise BundleError(f"{info.path}: graph set {info.graph_set!r} holds {fmt} graphs; backend {backend!r} cannot run "
                          f"them (use backend={' or '.join(repr(b) for b in FORMAT_BACKENDS[fmt])} or another graph set)")
    else:
        reason = "asked for"
    paths = (info.graph_file("encoder"), info.graph_file("decoder"))
    try:
        impl = _start(backend, info, paths, providers, threads, performance, static_shapes)
    except RuntimeErrorBase:
        raise
    except Exception as exc:  # a backend must never take the host down at open time either
        raise BackendError(f"{Path(paths[0]).parent}: cannot start the {backend} backend ({type(exc).__name__}: {exc})") from None
    impl.choice = reason
    return impl


def _start(backend: str, info: BundleInfo, paths, providers, threads, performance: str, static_shapes: int | None):
    if backend == "onnxruntime":
        from edgesam_runtime.backends.ort import OrtBackend
        return OrtBackend(*paths, providers=providers, threads=threads)
    if backend == "openvino":
        from edgesam_runtime.backends.ov import OvBackend
        if providers:
            raise InvalidInputError("providers: ONNX Runtime execution providers do not apply to backend 'openvino'")
        precisions = tuple(openvino_precision(info.entry(part)) for part in ("encoder", "decoder"))
        quantized = tuple(info.entry(part).get("precision") == "int8" for part in ("encoder", "decoder"))
        return OvBackend(*paths, precisions=precisions, threads=threads, performance=performance, quantized=quantized,
                         static_shapes=static_shapes)
    from edgesam_runtime.backends.trt import TrtBackend
    return TrtBackend(*paths, info=info)
