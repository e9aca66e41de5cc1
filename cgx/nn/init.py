"""Weight initialisation shared by network plugins."""
from torch import nn


def init_normal(module: nn.Module, std: float = 0.02) -> nn.Module:
    """The authors' 'normal' init: conv/linear weights ~ N(0, std), biases 0; norm weights ~ N(1, std)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module
