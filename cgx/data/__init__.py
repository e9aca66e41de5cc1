"""Image data: two domains, A and B, drawn independently (unpaired) or as pairs (data.paired: cgx.data.paired)."""
from .source import UnpairedSource, build_source

__all__ = ["UnpairedSource", "build_source"]
