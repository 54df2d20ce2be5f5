"""`edgesam inspect`: a bundle, a product's rules and a stream of frames -> per-frame verdicts, overlays and a
summary with latency percentiles; and the release gate of a new bundle against the last one (`gate`).

The decisions themselves come from the torch-free runtime (`edgesam_runtime.inspector`); this package reads
sources, writes what a line keeps (JSONL, overlays, summary) and compares bundles. Torch-free too.
"""
from edgesam.inspection.run import InspectConfig, run_inspection
from edgesam.inspection.sources import Frame, open_source

__all__ = ["Frame", "InspectConfig", "open_source", "run_inspection"]
