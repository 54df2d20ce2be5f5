"""edgesam: Segment Anything from checkpoint to inspection line."""
__version__ = "0.1.0"
