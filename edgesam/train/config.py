"""`FinetuneConfig`: every knob of `edgesam finetune`, validated, and round-tripped through YAML."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgesam.data import AugmentConfig
from edgesam.utils.config import Config, ConfigError, check_choice, check_integer, check_number

STRATEGIES = ("lora", "decoder", "partial", "full")
DECODER_MODES = ("train", "lora", "frozen")
INITS = ("pretrained", "random")
AMP_MODES = ("auto", "bf16", "fp16", "off")
LOSSES = ("focal_dice", "bce_dice")
INPUT_MODES = ("image", "roi")
REFINE_MODES = ("auto", "on", "off")
# Measured on magnetic-tile (benchmarks/finetune/heldout_results.md: LoRA adapting to held-out fray): half of
# every batch replayed cost the old classes about 2 points, three quarters about 1 while fray still gained 0.06.
DEFAULT_REPLAY_SHARE = 0.75

# A recipe is a set of defaults that work together; fields left unset (None) take the recipe's value,
# fields given explicitly win. `adapt` (the default for a checkpoint) takes a trained model to new data:
# LoRA adapters only, BCE + Dice, framed as the checkpoint records it; its rates and length were chosen by
# measurement (benchmarks/finetune). `sam` is SAM's own training choice (focal + Dice 20:1, lr 1e-4/1e-5),
# kept by name: on thin and low-contrast defects it ended below its start where `adapt` gained.
# `scratch` trains every weight of a randomly initialised model: one crop per
# object around its box, the box also given as the dense mask prompt, BCE + Dice -- from random init
# the two box-corner tokens alone never reach the mask, and the decoder collapses to empty masks.
RECIPES = {
    "adapt": dict(strategy="lora", input_mode=None, roi_margin=None, dense_box=None, loss="bce_dice",
                  image_size=None, epochs=25, batch_size=8, objects_per_image=2, box_prob=0.5, box_jitter=0.05,
                  lr_encoder=1e-4, lr_decoder=1e-4, lr_adapter=3e-3, weight_decay=0.01, warmup_steps=20, val_every=5),
    "sam": dict(strategy="lora", input_mode=None, roi_margin=None, dense_box=None, loss="focal_dice",
                image_size=None, epochs=10, batch_size=4, objects_per_image=8, box_prob=0.5, box_jitter=0.1,
                lr_encoder=1e-5, lr_decoder=1e-4, lr_adapter=1e-4, weight_decay=0.01, warmup_steps=20, val_every=1),
    # Measured on magnetic-tile (val split, 1,000 steps, vit_t): margin 1.5 beats 2.0 (crack 0.57 vs 0.51:
    # more pixels per defect), lr 3e-4 beats 1e-3 (5e-4 ties), box jitter 0.05 beats 0.1. Length (seed 0): 25
    # epochs 0.779, 35 0.792, 50 0.801 (7 min on a quiet 2-core Xeon, training's workers spinning); 60 epochs
    # are 2,400 steps, validated every 10 (benchmarks/finetune/results.md).
    "scratch": dict(strategy="full", input_mode="roi", roi_margin=1.5, dense_box=True, loss="bce_dice",
                    image_size=128, epochs=60, batch_size=8, objects_per_image=2, box_prob=1.0, box_jitter=0.05,
                    lr_encoder=3e-4, lr_decoder=3e-4, lr_adapter=1e-4, weight_decay=0.01, warmup_steps=50, val_every=10),
}
RECIPE_FOR_INIT = {"pretrained": "adapt", "random": "scratch"}


@dataclass
class FinetuneConfig(Config):
    HINT = "see `edgesam finetune --print-config`"

    # model
    model: str | None = None  # variant; None: the checkpoint's own, else vit_b
    checkpoint: str | None = None  # base weights; required for init=pretrained
    init: str = "pretrained"  # pretrained | random (from scratch; labelled in every output)
    recipe: str | None = None  # adapt | sam | scratch; None: adapt for init=pretrained, scratch for init=random
    image_size: int | None = None  # None: the variant's (or checkpoint's) own size
    # how the model frames its input (recorded with the checkpoint; see edgesam_runtime.roi); None: as the base
    # checkpoint records it (whole image for official checkpoints and random init)
    input_mode: str | None = None  # image (whole image) | roi (a crop per box)
    roi_margin: float | None = None  # roi: crop side = margin x the box's longest side
    dense_box: bool | None = None  # also give the box as the dense mask prompt
    # a refiner draws masks on a finer grid than the decoder's (edgesam.models.refiner); auto: the base's
    # own, else one where a class's IoU ceiling on the decoder's grid is below 0.85 (edgesam.eval.ceiling)
    refine: str = "auto"  # auto | on | off
    refine_stride: int = 1  # the refiner's grid: input side / stride (1 or 2)
    refine_width: int = 48  # its channels
    # data
    data: str | None = None
    # earlier training data mixed into every batch against forgetting: "DIR" or "DIR:FRACTION" (the share
    # of each batch it fills; default 0.5); its validation split is scored beside the new data's
    replay: str | None = None
    # with replay: an epoch losing more than this many points of mIoU on the replayed classes is never kept
    # (epochs are ranked by the mean of the new and the replayed classes' mIoU; edgesam.train.selection)
    max_forgetting: float = 1.0
    val_fraction: float = 0.2
    split_seed: int = 0  # which images are held out: fixed apart from `seed`, so seeds compare on one val split
    min_area: int = 16
    seed: int = 0  # init, augmentation, prompts and data order
    # strategy
    strategy: str | None = None  # lora | decoder | partial | full
    lora_rank: int = 4
    lora_alpha: float = 4.0
    lora_dropout: float = 0.0
    lora_blocks: list[int] | None = None  # encoder blocks to adapt; None = all
    lora_mlp: bool = False  # also adapt mlp.lin1 / mlp.lin2
    # train | lora | frozen; None: lora for strategy lora (adapters only: a few % of the weights), else train.
    # `--strategy lora --decoder-mode train` is LoRA on the encoder beside a fully trained decoder
    decoder_mode: str | None = None
    partial_blocks: int = 2  # strategy=partial: train the last N encoder blocks
    # optimisation
    loss: str | None = None  # focal_dice (SAM's 20:1) | bce_dice (1:1)
    epochs: int | None = None
    batch_size: int | None = None
    objects_per_image: int | None = None
    box_prob: float | None = None  # share of images prompted by boxes (else points); ROI framing: always boxes
    box_jitter: float | None = None
    n_pos: int = 1
    n_neg: int = 0
    lr_encoder: float | None = None  # full / partial encoder weights
    lr_adapter: float | None = None  # LoRA weights
    lr_decoder: float | None = None
    lr_refiner: float = 1e-3  # a mask refiner's weights
    weight_decay: float | None = None
    warmup_steps: int | None = None
    grad_clip: float = 1.0  # 0 disables
    grad_accum: int = 1
    amp: str = "auto"  # auto: bf16 autocast on CUDA and on CPUs with bf16 math (AVX512_BF16, AMX), else fp32
    grad_checkpointing: bool = False
    efficient_attention: bool = True
    patience: int = 0  # early stopping after N validations without val mIoU gain; 0 disables
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # run
    out: str = "runs/finetune/run"
    device: str = "auto"
    num_workers: int = 0
    max_steps: int | None = None  # stop after this many optimizer steps (tests, smoke runs)
    val_max_images: int | None = None  # cap validation images per epoch (None: all)
    val_every: int | None = None  # validate every N epochs (and after the last): validation time is training time lost
    cache_dir: str | None = None  # strategy=decoder: embedding cache on disk (None: memory)

    def __post_init__(self):
        if isinstance(self.augment, dict):
            self.augment = AugmentConfig.from_dict(self.augment)
        check_choice("init", self.init, INITS)
        if self.model is None and not self.checkpoint:
            self.model = "vit_b"
        if self.recipe is None:
            self.recipe = RECIPE_FOR_INIT[self.init]
        check_choice("recipe", self.recipe, tuple(RECIPES))
        for name, value in RECIPES[self.recipe].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.decoder_mode is None:
            self.decoder_mode = "lora" if self.strategy == "lora" else "train"
        self._boxes_for_roi()
        self.validate()

    def _boxes_for_roi(self) -> None:
        """ROI framing crops around a box: the recipe's share of point prompts turns into boxes."""
        if self.input_mode == "roi" and self.box_prob == RECIPES[self.recipe]["box_prob"]:
            self.box_prob = 1.0

    @property
    def framing(self):
        """The input framing this run trains (edgesam_runtime.roi.InputFraming), or None: the base's own."""
        from edgesam_runtime.roi import WHOLE_IMAGE, InputFraming

        if self.input_mode is None:
            return None
        try:
            return InputFraming(mode=self.input_mode,
                                roi_margin=WHOLE_IMAGE.roi_margin if self.roi_margin is None else self.roi_margin,
                                dense_box=bool(self.dense_box))
        except ValueError as e:
            raise ConfigError(str(e).replace("framing.mode", "input_mode").replace("framing.", "")) from None

    @property
    def replay_source(self) -> tuple[str, float] | None:
        """(folder, share of each batch) of the replayed data, or None."""
        if self.replay is None:
            return None
        if not isinstance(self.replay, str) or not self.replay.strip():
            raise ConfigError(f"replay: expected DIR or DIR:FRACTION, got {self.replay!r}")
        folder, sep, share = self.replay.rpartition(":")
        if not sep or not folder:
            return self.replay, DEFAULT_REPLAY_SHARE
        try:
            fraction = float(share)
        except ValueError:
            return self.replay, DEFAULT_REPLAY_SHARE  # a ':' inside the path, no fraction
        if not 0.0 < fraction < 1.0:
            raise ConfigError(f"replay: the fraction after ':' is the share of each batch from DIR, expected a "
                              f"number in (0, 1), got {share!r}")
        return folder, fraction

    @property
    def refine_spec(self):
        """The refiner this run would add (edgesam_runtime.roi.RefineSpec) when it adds one."""
        from edgesam_runtime.roi import RefineSpec

        try:
            return RefineSpec(stride=self.refine_stride, width=self.refine_width)
        except ValueError as e:
            raise ConfigError(str(e).replace("refine.", "refine_")) from None

    def with_framing_of(self, recorded) -> "FinetuneConfig":
        """This config with the framing fields it leaves open taken from `recorded` (the base model's)."""
        resolved = self.replace(
            input_mode=recorded.mode if self.input_mode is None else self.input_mode,
            roi_margin=recorded.roi_margin if self.roi_margin is None else self.roi_margin,
            dense_box=recorded.dense_box if self.dense_box is None else self.dense_box)
        resolved._boxes_for_roi()
        return resolved.validate()

    def validate(self) -> "FinetuneConfig":
        check_choice("strategy", self.strategy, STRATEGIES)
        check_choice("decoder_mode", self.decoder_mode, DECODER_MODES)
        check_choice("init", self.init, INITS)
        check_choice("amp", self.amp, AMP_MODES)
        check_choice("loss", self.loss, LOSSES)
        if self.input_mode is not None:
            check_choice("input_mode", self.input_mode, INPUT_MODES)
        check_choice("refine", self.refine, REFINE_MODES)
        self.refine_spec  # validates refine_stride and refine_width
        self.framing  # validates roi_margin and dense_box
        if self.input_mode == "roi" and self.box_prob < 1.0:
            raise ConfigError("box_prob: input_mode roi crops around each object's box, so every prompt is a box "
                              f"(box_prob: 1); got {self.box_prob}")
        if self.init == "pretrained" and not self.checkpoint:
            raise ConfigError("checkpoint: required with init=pretrained (or set init: random to train from scratch)")
        if self.model is None and not self.checkpoint:
            raise ConfigError("model: give a variant or a checkpoint")
        for name in ("epochs", "batch_size", "objects_per_image", "lora_rank", "grad_accum", "partial_blocks", "val_every"):
            check_integer(name, getattr(self, name), 1)
        for name in ("warmup_steps", "patience", "num_workers", "n_pos", "n_neg", "min_area", "split_seed"):
            check_integer(name, getattr(self, name), 0)
        for name in ("lr_encoder", "lr_adapter", "lr_decoder", "lr_refiner", "lora_alpha", "weight_decay", "grad_clip", "box_jitter"):
            check_number(name, getattr(self, name), low=0.0)
        check_number("lora_dropout", self.lora_dropout, 0.0, 1.0)
        check_number("box_prob", self.box_prob, 0.0, 1.0)
        check_number("max_forgetting", self.max_forgetting, 0.0, 100.0)
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction: expected a number in (0, 1), got {self.val_fraction!r}")
        if self.image_size is not None and (not isinstance(self.image_size, int) or self.image_size % 16):
            raise ConfigError(f"image_size: expected a multiple of 16, got {self.image_size!r}")
        if self.max_steps is not None:
            check_integer("max_steps", self.max_steps, 1)
        self.replay_source  # validates replay
        if self.box_prob < 1.0 and self.n_pos + self.n_neg == 0:
            raise ConfigError("n_pos, n_neg: point prompts need at least one point (or set box_prob: 1)")
        if self.strategy == "decoder" and self.decoder_mode == "frozen":
            raise ConfigError("decoder_mode: frozen leaves nothing to train with strategy=decoder")
        return self

    @property
    def out_dir(self) -> Path:
        return Path(self.out)

