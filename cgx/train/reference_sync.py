"""Hold one training step of cgx against one step of a plain reference (``cgx.train.reference*``), both
starting from the same state, for the reference-equality tests.

Comparing the two sides after several steps measures float rounding amplified by Adam: a weight whose
gradient is ~0 moves by up to lr either way on rounding noise alone, and that noise depends on thread
count and CPU kind. So, per step: the reference first takes cgx's weights, buffers and optimizer state
(``load``); each side's gradients are read as its optimizer steps (``step``); and the reference's
optimizer, from that same state and fed cgx's gradients, must give cgx's new weights (``replayed``).
The gradients compare the objectives, the replay the optimizers (lr, betas, which parameters each
updates), and no error compounds from one step into the next. The reference may run in float64 (its
networks converted; state is converted as it is loaded), so that only cgx's float32 rounding is measured."""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

Pairs = dict[str, tuple[nn.Module, nn.Module]]  # label -> (cgx's network, the reference's)


class StepSync:
    def __init__(self, networks: Pairs, optimizers: list[tuple[torch.optim.Optimizer, torch.optim.Optimizer]]) -> None:
        self.networks, self.optimizers = networks, optimizers
        self.params: dict[str, tuple[nn.Parameter, nn.Parameter]] = {}  # "label.name" -> (cgx's, the reference's)
        for label, (ours, ref) in networks.items():
            mine, theirs = dict(ours.named_parameters()), dict(ref.named_parameters())
            if mine.keys() != theirs.keys():
                raise AssertionError(f"{label}: parameters {sorted(mine.keys() ^ theirs.keys())} on one side only")
            self.params.update({f"{label}.{k}": (mine[k], theirs[k]) for k in mine})
        for ours_opt, ref_opt in optimizers:  # every optimized parameter is compared, against its counterpart's
            held = [{p for g in opt.param_groups for p in g["params"]} for opt in (ours_opt, ref_opt)]
            for name, (o, r) in self.params.items():
                if (o in held[0]) != (r in held[1]):
                    raise AssertionError(f"{name} is updated by one side's optimizer only")
            if any(sum(p in h for p in side) != len(h) for h, side in zip(held, zip(*self.params.values()))):
                raise AssertionError("an optimizer updates a parameter of no network compared")
        self._twins: list[torch.optim.Optimizer] = []
        self.steps = 0  # the step being compared, counted from 0
        self.shares: dict[str, float] = {}

    def load(self, step: int) -> None:
        """The reference takes cgx's weights, buffers and optimizer state (step count, moments) before step
        ``step`` (counted from 0, named in the checks' messages)."""
        self.steps = step
        with torch.no_grad():
            for ours, ref in self.networks.values():
                ref.load_state_dict(ours.state_dict())
        for ours_opt, ref_opt in self.optimizers:
            ref_opt.state.clear()
            for o, r in self.params.values():
                if o in ours_opt.state:
                    ref_opt.state[r] = {k: (v.to(r.dtype, copy=True) if k != "step" and v.is_floating_point() else v.clone())
                                        if torch.is_tensor(v) else v for k, v in ours_opt.state[o].items()}
        # the reference's optimizers and parameters as they are now, to replay this step from
        self._twins = [copy.deepcopy(ref_opt) for _, ref_opt in self.optimizers]

    def step(self, ours: Callable[[], object], theirs: Callable[[], object]):
        """Run cgx's step, then the reference's; return both results and each parameter's two gradients
        (as each optimizer saw them, ``None`` where a side gave it none) by name."""
        seen: tuple[dict, dict] = ({}, {})

        def tap(record: dict):
            def hook(opt, args, kwargs):
                record.update({p: p.grad.detach().clone() for g in opt.param_groups for p in g["params"]
                               if p.grad is not None})
            return hook

        handles = [opt.register_step_pre_hook(tap(seen[side])) for pair in self.optimizers
                   for side, opt in enumerate(pair)]
        try:
            results = ours(), theirs()
        finally:
            for h in handles:
                h.remove()
        grads = {name: (seen[0].get(o), seen[1].get(r)) for name, (o, r) in self.params.items()}
        return results, grads

    def replayed(self, grads: dict[str, tuple[torch.Tensor | None, torch.Tensor | None]]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """One step of the reference's optimizers from the state ``load`` gave them, on cgx's gradients:
        ``{name: (cgx's new weight, the reference optimizer's)}``."""
        by_ref = {r: name for name, (_, r) in self.params.items()}
        out = {}
        for twin, (_, ref_opt) in zip(self._twins, self.optimizers):
            names = [by_ref[p] for g in ref_opt.param_groups for p in g["params"]]
            twins = [p for g in twin.param_groups for p in g["params"]]
            for name, p in zip(names, twins):
                g = grads[name][0]
                p.grad = None if g is None else g.to(p.dtype)
            twin.step()
            out.update({name: (self.params[name][0].detach(), p.detach()) for name, p in zip(names, twins)})
        return out

    # The checks, each recording in ``shares`` the largest share of its tolerance it used.

    def within(self, kind: str, what: str, x: torch.Tensor, y: torch.Tensor, rtol: float, atol: float) -> None:
        """|x - y| <= atol + rtol |y| everywhere, else an AssertionError naming ``what`` and the step."""
        share = ((x.double() - y.double()).abs() / (atol + rtol * y.double().abs())).max().item() if x.numel() else 0.0
        self.shares[kind] = max(self.shares.get(kind, 0.0), share)
        if not share <= 1:
            raise AssertionError(f"step {self.steps}: {what} differs ({kind}) by {(x - y).abs().max().item():.3g} "
                                 f"({share:.3g} of its tolerance)")

    def check_gradients(self, grads, *, rel_l2: float, skip=frozenset()) -> None:
        """Per network, the gradient (its parameters but ``skip`` as one vector) within ``rel_l2`` of the
        reference's in relative L2 norm; and a gradient on both sides or on neither, for every parameter.
        One vector per network, not elementwise: rounding that flips a ReLU or L1 kink, or that an instance
        norm amplifies, moves some elements by a share of their tensor's largest; a wrong gradient path
        moves the whole vector by O(1)."""
        sums: dict[str, list[float]] = {}
        for name, (g, h) in grads.items():
            if (g is None) != (h is None):
                raise AssertionError(f"step {self.steps}: {name} has a gradient on one side only")
            if g is not None and name not in skip:
                d = sums.setdefault(name.split(".")[0], [0.0, 0.0])
                d[0] += (g.double() - h.double()).pow(2).sum().item()
                d[1] += h.double().pow(2).sum().item()
        for label, (diff, norm) in sums.items():
            self.within("gradients", f"the gradient of {label}", torch.tensor(diff ** 0.5), torch.tensor(0.0),
                        0.0, rel_l2 * norm ** 0.5 + 1e-30)

    def check_step(self, losses: dict[str, tuple[torch.Tensor, torch.Tensor]], grads, *, rel_l2: float,
                   weight_rtol: float, lr: float, skip=frozenset()) -> None:
        """One step's three checks: every loss (``name: (cgx's, the reference's)``) to one float32 forward's
        rounding (rtol 1e-5), the gradients per network (``check_gradients``), and the update replayed on cgx's
        gradients (``check_update``, atol 1e-3 of one update, at most lr)."""
        for name, (x, y) in losses.items():
            self.within("losses", name, x, y, 1e-5, 1e-7)
        self.check_gradients(grads, rel_l2=rel_l2, skip=skip)
        self.check_update(grads, rtol=weight_rtol, atol=1e-3 * lr)

    def check_update(self, grads, *, rtol: float, atol: float) -> None:
        """cgx's new weights are the reference optimizers' step from the same state on cgx's gradients."""
        for name, (w, v) in self.replayed(grads).items():
            self.within("weights", name, w, v, rtol, atol)
