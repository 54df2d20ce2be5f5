"""Typed errors of the runtime: line software catches `RuntimeErrorBase` (or one subclass) and keeps
running; a failed call never leaves a `Segmenter` unusable."""
from __future__ import annotations

from edgesam_runtime import manifest as _manifest


class RuntimeErrorBase(Exception):
    """Base of every error `edgesam_runtime` raises on purpose."""


class InvalidInputError(RuntimeErrorBase, ValueError):
    """A call argument with the wrong type, dtype or shape, NaN/inf values, coordinates outside the
    image, or more prompts than the bundle's limits or the engine's profile allow."""


class BundleError(RuntimeErrorBase, _manifest.BundleError):
    """A bundle that is missing, corrupt, tampered with, from another format version, or whose graphs
    do not match the manifest and `edgesam_runtime.io_spec` (also an `edgesam_runtime.manifest.BundleError`)."""


class BackendError(RuntimeErrorBase, RuntimeError):
    """The inference backend failed (or cannot be used here: library, GPU, engine version)."""


__all__ = ["BackendError", "BundleError", "InvalidInputError", "RuntimeErrorBase"]
