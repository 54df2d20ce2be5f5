"""Numerical tolerances of every parity test, written once with the reason for each value.

Each area adds its own section; tests import the constant instead of writing a number inline.
"""

# --- foundation: geometry and the reference predictor ---------------------------------------
# Our upscaling folds SAM's two bilinear resizes into one float64 matrix product cast to float32;
# torch runs two float32 resizes. Logits are O(10): 1e-4 absolute is ~1e-5 relative, float32 noise.
UPSCALE_LOGITS_ATOL = 1e-4
# Normalization is the same float32 arithmetic as Sam.preprocess; only the order of ops may differ.
PREPROCESS_ATOL = 1e-5
# The predictor runs the same modules on the same inputs as SamPredictor: low-res logits agree to
# float32 rounding (we observe exact equality; 1e-4 allows for BLAS thread-count differences).
PREDICTOR_LOGITS_ATOL = 1e-4
# Masks may differ only where the upscaled logit sits within rounding of the 0 threshold: allow
# at most this fraction of pixels to differ.
PREDICTOR_MASK_MAX_DIFF_FRACTION = 1e-4

# --- training, evaluation, merge and efficient attention ---------------------------
# Loss values are O(1) float32 reductions over a few hundred elements: 1e-5 is float32 rounding.
LOSS_ATOL = 1e-5
# EfficientAttention vs official Attention in fp32 on CPU: same math, different summation order in
# the fused softmax; activations O(1-10) agree to ~1e-6, 1e-4 leaves room for other BLAS builds.
# The whole-encoder check allows 10x this (six blocks, a neck with LayerNorms compounding rounding).
ATTENTION_ATOL = 1e-4
# Gradients scale with the random weights (O(1e3) here), so they are compared relative to their max:
# fp32 rounding through softmax backward is ~1e-6 relative; 1e-4 leaves room for other BLAS builds.
ATTENTION_GRAD_RTOL = 1e-4

# --- export: ONNX graphs, FP16, INT8 ------------------------------------------------
# The fp32 ONNX graphs run the same float32 ops as PyTorch in another order (ORT fuses MatMul+Add,
# LayerNorm): embeddings are O(1) after the neck's LayerNorm, so 1e-4 is ~100x float32 rounding.
EXPORT_FP32_EMBED_ATOL = 1e-4
# Low-res logits are O(1..10) on a random-init tiny model: 1e-3 absolute still catches any real drift.
EXPORT_FP32_LOGITS_ATOL = 1e-3
# FP16 keeps LayerNorm/Softmax in fp32; fp16's 11-bit mantissa (~5e-4 relative) over ~10 layers:
# a mean mask IoU of 0.95 allows a few boundary pixels of a 16x16 low-res mask to flip.
EXPORT_FP16_MASK_IOU_MIN = 0.95
# INT8 (8-bit activations, 7-bit per-channel weights) on the tiny random model: masks of a random
# model sit near the 0 threshold everywhere, so flips are common; 0.8 still fails a broken graph (~0.3).
EXPORT_INT8_MASK_IOU_MIN = 0.8

# --- compression: structured pruning -------------------------------------------------
# A pruned model vs the same model with the pruned heads/channels zeroed: identical maths, but the
# matmuls sum over fewer terms, so float32 rounding differs; embeddings are O(1) LayerNorm outputs.
PRUNE_ZEROED_EQUIV_ATOL = 1e-5
# 2:4 compressed (semi-structured) kernels vs the same masked weights run dense, both fp16: the kernels
# accumulate in another order; fp16 eps ~1e-3 compounded over the encoder's blocks on O(1) embeddings.
PRUNE_SPARSE24_FP16_ATOL = 5e-2
# Pruned bundle in the runtime vs the pruned torch model, fp32 low-res logits: ORT's fused kernels
# reorder float32 sums (the runtime's own parity bound); a slicing or arch bug is O(1).
PRUNE_RUNTIME_LOGITS_ATOL = 1e-3

# --- runtime and bench --------------------------------------------------------------
# ONNX Runtime vs PyTorch on the same fp32 weights: fused kernels reorder float32 sums. Low-res logits
# and IoU scores are O(1-10); we observe < 1e-5 on the tiny model, 1e-3 (~1e-4 relative) leaves room
# for other CPUs and thread counts while any real drift (a geometry or prompt bug) is orders larger.
RUNTIME_LOGITS_ATOL = 1e-3
# Torch fast path in fp32 with SDPA attention vs the official attention: the same maths with another
# summation order (see ATTENTION_ATOL); low-res logits are O(10), so 1e-3 absolute.
FAST_PATH_FP32_LOGITS_ATOL = 1e-3
# bf16 encoder (8-bit mantissa) vs fp32: embeddings move by ~1e-2, which flips mask pixels near the
# threshold only; 0.95 mean mask IoU is the floor (bench measured 0.997 on the tiny model).
FAST_PATH_BF16_MASK_IOU_MIN = 0.95
# Resume vs uninterrupted run on CPU: same seeds, same ops, same order, so the figures should be
# bit-identical; 1e-6 only absorbs float formatting in metrics.csv.
RESUME_METRIC_ATOL = 1e-6
# Merged (W + s*B@A) vs adapted (x@W + s*(x@A)@B) vit_t logits: only fp32 summation order differs;
# observed ~1e-6 on logits O(1); 1e-4 leaves margin for other BLAS builds.
MERGE_LOGITS_ATOL = 1e-4
# peft's PeftModel.from_pretrained on the base vs the project's adapted model: the same LoRA layers (peft's
# own) with the same weights on the same inputs, so bit-identical on CPU (observed 0); 1e-6 only absorbs a
# kernel choosing another summation order between two model instances.
PEFT_LOAD_LOGITS_ATOL = 1e-6
# Hand-computed evaluation figures are exact rationals; 1e-9 only absorbs float64 rounding.
EVAL_ATOL = 1e-9
# Gradient checkpointing recomputes the same ops on the same inputs: bit-identical on CPU; 1e-6
# absorbs any kernel that picks another summation order for the recomputation.
GRAD_CHECKPOINT_ATOL = 1e-6
# TensorRT fp32 engines may use TF32 tensor cores for matmuls (10-bit mantissa): logits O(10) move by
# up to ~1e-2; 5e-2 still catches any wrong binding or shape (those give O(1) errors).
RUNTIME_TRT_FP32_LOGITS_ATOL = 5e-2

# --- geometry: upscale_masks boundary band ------------------------------------------------------
# upscale_masks computes only the boundary band's values, per pixel in the same two stages as
# upscale_logits but without BLAS's summation order (FMA): a pixel may differ from
# `upscale_logits > 0` only where that logit is within float32 rounding of 0 (terms are O(10)).
UPSCALE_MASK_FLIP_ATOL = 1e-5

# --- inspection: measurements ---------------------------------------------------------------------
# Measurements of rasterised synthetic shapes vs their hand-computed figures: a drawn line or disc differs
# from the ideal shape by at most one pixel along its ends or rim, ~1 % of the figures tested; 2 % is the
# accuracy the inspection verbs promise.
MEASURE_REL_TOL = 0.02
# Widths come from the distance transform at pixel centres: an even-width bar's centre line sits half a
# pixel off-centre, so a width reads up to one pixel short.
MEASURE_WIDTH_ATOL_PX = 1.0
