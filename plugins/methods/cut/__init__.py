"""The built-in methods ``cut`` and ``fastcut`` (Park et al., ECCV 2020). Their defaults are the
authors' (taesungp/contrastive-unpaired-translation, ``models/cut_model.py``
``modify_commandline_options``, ``options/base_options.py``, ``options/train_options.py``):

============================  ======  ========  ===============================================
argument                      cut     fastcut   the authors' option
============================  ======  ========  ===============================================
gan_weight                    1       1         --lambda_GAN 1.0
nce_weight                    1       10        --lambda_NCE (1.0; FastCUT mode sets 10.0)
nce_idt                       true    false     --nce_idt (CUT mode True, FastCUT mode False)
nce_layers                    0,4,8,12,16       --nce_layers '0,4,8,12,16' (module indices of their
                                                ResNet generator's nn.Sequential; cgx's ``resnet``
                                                has the same modules: see plugins/generators/resnet.py)
num_patches                   256     256       --num_patches 256
head_units                    256     256       --netF mlp_sample --netF_nc 256
temperature                   0.07    0.07      --nce_T 0.07
flip_equivariance             false   true      --flip_equivariance (FastCUT mode True)
============================  ======  ========  ===============================================

Negatives from the same image only (``--nce_includes_all_negatives_from_minibatch False``); no history
buffer (``pool_size=0``); LSGAN (``--gan_mode lsgan``), PatchGAN (``--netD basic``), ResNet 9 blocks
with anti-aliased down/upsampling (``--netG resnet_9blocks``, no ``--no_antialias``): the recipes
(recipes/cut_256.yaml, recipes/fastcut_256.yaml) set those, and the schedule (CUT: 200 + 200
epochs, FastCUT: 150 + 50)."""
from __future__ import annotations

from cgx.plugins import hookimpl
from cgx.plugins.args import at_least

from ..semantic import parse_semantic
from .method import CUT
from .semantic import SemanticCUT

AUTHORS_LAYERS = (0, 4, 8, 12, 16)


def _build(gan_weight, nce_weight, nce_idt, nce_layers, num_patches, head_units, temperature, flip_equivariance,
           semantic=None):
    at_least(0, gan_weight=gan_weight, nce_weight=nce_weight)
    at_least(1, num_patches=num_patches, head_units=head_units)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not nce_layers or any(i < 0 for i in nce_layers) or len(set(nce_layers)) != len(nce_layers):
        raise ValueError(f"nce_layers must be distinct module indices >= 0, got {list(nce_layers)}")
    if nce_weight == 0:
        raise ValueError("nce_weight must be > 0 (without PatchNCE the projection heads would train on nothing; "
                         "for a plain one-sided GAN this method is not needed)")
    args = (gan_weight, nce_weight, nce_idt, tuple(nce_layers), num_patches, head_units, temperature, flip_equivariance)
    spec = parse_semantic(semantic)
    return CUT(*args) if spec is None else SemanticCUT(*args, semantic=spec)


def build_cut(gan_weight: float = 1.0, nce_weight: float = 1.0, nce_idt: bool = True,
              nce_layers: tuple[int, ...] = AUTHORS_LAYERS, num_patches: int = 256, head_units: int = 256,
              temperature: float = 0.07, flip_equivariance: bool = False, semantic: dict | None = None) -> CUT:
    """CUT: GAN + PatchNCE on A -> G(A) and, as identity, on B -> G(B), the two NCE terms averaged.
    ``semantic``: semantic consistency, ``{weight, network, pretrain_steps, init_from}``
    (plugins/methods/semantic.py; needs data.a.labels); null: off."""
    return _build(gan_weight, nce_weight, nce_idt, nce_layers, num_patches, head_units, temperature,
                  flip_equivariance, semantic)


def build_fastcut(gan_weight: float = 1.0, nce_weight: float = 10.0, nce_idt: bool = False,
                  nce_layers: tuple[int, ...] = AUTHORS_LAYERS, num_patches: int = 256, head_units: int = 256,
                  temperature: float = 0.07, flip_equivariance: bool = True, semantic: dict | None = None) -> CUT:
    """FastCUT: GAN + 10 x PatchNCE on A -> G(A), no identity term, flip-equivariance augmentation.
    ``semantic``: as CUT's."""
    return _build(gan_weight, nce_weight, nce_idt, nce_layers, num_patches, head_units, temperature,
                  flip_equivariance, semantic)


@hookimpl
def cgx_register_methods(register):
    register("cut", build_cut)
    register("fastcut", build_fastcut)
