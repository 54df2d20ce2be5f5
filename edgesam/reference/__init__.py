"""The PyTorch reference: the predictor every exported graph and the runtime are checked against."""
from edgesam.reference.predictor import SamReferencePredictor

__all__ = ["SamReferencePredictor"]
