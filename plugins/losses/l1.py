"""L1 reconstruction loss for the cycle and identity terms."""
import torch
import torch.nn.functional as F

from cgx.plugins import hookimpl


class L1Loss:
    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(output.float(), target.float())


def build_l1() -> L1Loss:
    return L1Loss()


@hookimpl
def cgx_register_reconstruction_losses(register):
    register("l1", build_l1)
