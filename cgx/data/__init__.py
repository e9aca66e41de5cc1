"""Unpaired image data: two domains, A and B, drawn independently."""
from .source import UnpairedSource, build_source

__all__ = ["UnpairedSource", "build_source"]
