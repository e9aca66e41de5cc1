"""The training crop checked against what each translating network takes (its ``size_multiple`` and
``min_size``), when the run is wired: a U-Net of 6 levels cannot take 32 px crops, and the recipe says so in
one line instead of the network failing at the first step."""
from __future__ import annotations

from typing import Mapping

from torch import nn

from ..config import Config
from ..errors import ConfigError
from ..safe_text import shown

CROPPED = ("resize_and_crop", "scale_width_and_crop", "crop")
"""``data.preprocess`` modes whose training images are ``data.crop_size`` square (``none`` keeps each image's
own size: not known before it is read)."""


def check_input_size(cfg: Config, translators: Mapping[str, nn.Module]) -> None:
    """ConfigError naming ``data.crop_size``, the direction and what would fit, where a translating network
    (``method.translators``) cannot take the training crop."""
    if cfg.data.preprocess not in CROPPED:
        return
    size = cfg.data.crop_size
    for direction, net in translators.items():
        multiple = int(getattr(net, "size_multiple", 1) or 1)
        least = int(getattr(net, "min_size", 1) or 1)
        if size % multiple == 0 and size >= least:
            continue
        fits = -(-max(size, least) // multiple) * multiple  # the next multiple at or above both
        raise ConfigError(f"{shown(cfg.recipe or '<recipe>')}: data.crop_size={size} does not fit the {direction} network "
                          f"(model.generator {type(net).__name__}): it takes sides that are multiples of {multiple} "
                          f"and at least {least}; use e.g. data.crop_size={fits}")
