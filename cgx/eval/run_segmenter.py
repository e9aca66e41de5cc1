"""``cgx eval --segmenter run``: the FCN score by the run's own segmenter, the network group ``segmenter`` of
the checkpoint being evaluated (``method.semantic``: trained on the real labelled images beside the
generators). The method says how its segmenter is built (``build_segmenter(make)``, the bare group without
any ``init_from`` weights); the weights are the checkpoint's.

Mind what it measures: this segmenter trained on the labelled domain's real images (both domains' where B has
labels) and its own generator learned to satisfy it, so its score is an optimistic one. The paper's protocol,
and the one to compare runs by, is one reference segmenter trained on the target domain's real images for
every run (``python -m cgx.eval.reference_segmenter``)."""
from __future__ import annotations

from ..errors import CheckpointError, UsageError
from ..safe_text import shown
from .segmenters import LogitsSegmenter, Segmenter

GROUP = "segmenter"


def run_segmenter(context) -> Segmenter:
    """The run's segmenter group from ``context`` (``cgx.infer.Generators``: the checkpoint's recipe and folder)."""
    from ..plugins import default_registry
    from ..train.checkpoint import SHARED_FILE, read_checkpoint
    from ..train.components import RecipeComponents, build_method, method_call

    if context is None or getattr(context, "config", None) is None:
        raise UsageError("--segmenter run needs a cgx run or checkpoint (the authors' files hold no segmenter)")
    cfg, ckpt = context.config, context.checkpoint
    where = str(ckpt / SHARED_FILE)
    registry = default_registry()
    method = build_method(cfg, registry, where)
    build = getattr(method, "build_segmenter", None)
    if not callable(build):
        raise UsageError(f"--segmenter run: the run's method ({shown(cfg.method.name)}) trains no segmenter (set "
                         f"method.semantic to train one); give --segmenter a TorchScript or ONNX file instead")
    net = method_call(cfg, build, RecipeComponents(cfg, registry, where), where=where)
    shared = read_checkpoint(ckpt)
    state = shared.get("groups", {}).get(GROUP)
    module = state.get("module") if isinstance(state, dict) else None
    if module is None:
        raise CheckpointError(f"{where}: no {GROUP} group in it (groups.{GROUP}.module), though its method has one")
    try:
        net.load_state_dict(module)
    except RuntimeError as e:
        raise CheckpointError(f"{where}: the segmenter's weights do not fit its recorded method.semantic.network: "
                              f"{str(e).splitlines()[0]}") from None
    net.eval()

    def forward(images):
        return net.to(images.device)(images)

    return LogitsSegmenter(forward, f"run ({ckpt})")
