"""Wasserstein loss with gradient penalty (Gulrajani et al. 2017, WGAN-GP):

    L_D = E[D(fake)] - E[D(real)] + gp_weight * E[(||grad_x D(x_hat)||_2 - 1)^2]
    L_G = -E[D(fake)]

with x_hat = eps * real + (1 - eps) * fake, eps ~ U[0, 1] per sample. The penalty needs the
discriminator and both batches, which the trainer passes to every adversarial loss
(``cgx.plugins.types.DiscriminatorBatch``): one extra forward pass of this domain's (unwrapped)
discriminator on x_hat and a double backward through it.

- The critic value of a patch or multi-output discriminator is the mean of its score map
  (``reduce="mean"``, consistent with the E[D(.)] terms); ``reduce="sum"`` takes the gradient of
  the summed map, as the CycleGAN authors' ``cal_gradient_penalty`` does. A multi-output
  discriminator (multiscale, timm heads) gets one penalty per output, averaged.
- Not halved, unlike lsgan's 0.5: the critic loss is the paper's, and the 0.5 would also halve
  the penalty's weight (with Adam a constant factor hardly matters anyway).
- The penalty is computed in fp32 with autocast disabled, whatever ``train.precision``: its
  gradient norms are small differences that bf16/fp16 round badly.
- Use a discriminator whose outputs do not mix samples (instance norm or none, not batch norm),
  as the paper advises, and whose operations all have a double backward (timm backbones with
  hard-sigmoid, e.g. MobileNetV3, do not); ``train.compile`` cannot differentiate a compiled module
  twice."""
from typing import Literal

import torch

from cgx.plugins import DiscriminatorBatch, Scores, as_list, hookimpl, mean_over


class WGANGPLoss:
    def __init__(self, gp_weight: float = 10.0, target_norm: float = 1.0, reduce: str = "mean") -> None:
        self.gp_weight = gp_weight
        self.target_norm = target_norm
        self.reduce = reduce

    def generator_loss(self, fake_scores: Scores) -> torch.Tensor:
        return mean_over(fake_scores, lambda s: -s.float().mean())

    def discriminator_loss(self, real_scores: Scores, fake_scores: Scores,
                           batch: DiscriminatorBatch | None = None) -> torch.Tensor:
        distance = mean_over(fake_scores, lambda s: s.float().mean()) - mean_over(real_scores, lambda s: s.float().mean())
        if self.gp_weight == 0:
            return distance
        if batch is None:
            raise ValueError("wgangp: the gradient penalty needs the discriminator batch "
                             "(discriminator_loss(real_scores, fake_scores, batch))")
        return distance + self.gp_weight * self.gradient_penalty(batch.discriminator, batch.real, batch.fake)

    def gradient_penalty(self, discriminator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        real, fake = real.detach().float(), fake.detach().float()
        eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        with torch.autocast(x_hat.device.type, enabled=False):
            outputs = as_list(discriminator(x_hat))
        penalties = []
        for s in outputs:
            per_sample = s.float().flatten(1)
            critic = per_sample.mean(1) if self.reduce == "mean" else per_sample.sum(1)
            (grad,) = torch.autograd.grad(critic.sum(), x_hat, create_graph=True)
            norm = grad.flatten(1).square().sum(1).add(1e-12).sqrt()
            penalties.append((norm - self.target_norm).square().mean())
        return sum(penalties) / len(penalties)


def build_wgangp(gp_weight: float = 10.0, target_norm: float = 1.0,
                 reduce: Literal["mean", "sum"] = "mean") -> WGANGPLoss:
    """gp_weight: lambda (10 in the paper); target_norm: the gradient norm the penalty pulls to (1);
    reduce: how a score map becomes the critic value whose gradient is penalised."""
    return WGANGPLoss(gp_weight, target_norm, reduce)


@hookimpl
def cgx_register_adversarial_losses(register):
    register("wgangp", build_wgangp)
