"""Evaluation: FID and KID (TF-Inception 2015-12-05 features) and cycle L1 of a run's generators,
from the command line (``cgx eval``) or during training (the recipe's ``eval`` section)."""
from .evaluate import DIRECTIONS, METRICS, evaluate, metric_value
from .image_set import ImageSet
from .inception import InceptionFeatures, InceptionWeights, resolve_weights
from .fid_kid import fid, kid

__all__ = ["DIRECTIONS", "METRICS", "ImageSet", "InceptionFeatures", "InceptionWeights", "evaluate", "fid", "kid",
           "metric_value", "resolve_weights"]
