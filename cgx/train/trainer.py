"""The Trainer owns the run: networks, optimizers, schedule, buffers, data position, logs and
checkpoints. It is itself checkpointable; distribution is the strategy's business."""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from ..config import Config, dump_config
from ..data import build_source
from ..dist import PrecisionError, build_strategy
from ..plugins import Registry, default_registry
from . import components
from .checkpoint import CheckpointError, CheckpointStore
from .logger import Logger, NullLogger
from .rng import rng_state, seed_everything, set_rng_state
from .schedule import linear_decay
from .step import CycleGANStep, Objective
from .stop import StopRequest

FORMAT = 1


class NonFiniteLossError(RuntimeError):
    pass


class Trainer:
    def __init__(self, cfg: Config, registry: Registry | None = None, strategy=None) -> None:
        self.cfg = cfg
        self.registry = registry or default_registry()
        components.load_recipe_plugins(cfg, self.registry)
        components.check_components(cfg, self.registry)
        self.run_dir = Path(cfg.train.run_dir)
        self.strategy = strategy or build_strategy(cfg.dist, cfg.train)
        s = self.strategy
        self.device = s.device

        # The same initial weights on every rank (DDP also broadcasts rank 0's).
        seed_everything(cfg.train.seed)
        gens, discs = components.build_networks(cfg, self.registry)
        if cfg.train.channels_last and self.device.type == "cpu":
            # Measured here (torch 2.14.1, CPU): channels_last gives these nets' conv weights
            # gradients that differ from contiguous ones by more than their own size.
            raise PrecisionError("train.channels_last=true gives wrong gradients on CPU with this torch; "
                                 "use it on CUDA only (train.channels_last=false)")
        memory_format = torch.channels_last if cfg.train.channels_last else torch.preserve_format
        gens.to(self.device, memory_format=memory_format)
        discs.to(self.device, memory_format=memory_format)
        if cfg.train.compile:
            for net in (gens.G, gens.F, discs.D_A, discs.D_B):
                net.compile()
        self.gens = s.wrap(gens, s.make_optimizer(gens.parameters(), cfg.optim), name="generators")
        self.discs = s.wrap(discs, s.make_optimizer(discs.parameters(), cfg.optim), name="discriminators")

        # From here on every rank draws different randomness (buffers, augmentation).
        seed_everything(cfg.train.seed + 1_000_003 * s.rank)
        self.pool_a = components.build_buffer(cfg, self.registry)
        self.pool_b = components.build_buffer(cfg, self.registry)
        objective = Objective(
            components.build_adversarial_loss(cfg, self.registry),
            components.build_reconstruction_loss(cfg, self.registry),
            cfg.loss.cycle_weight, cfg.loss.identity_weight,
        )
        self.cycle_step = CycleGANStep(self.gens, self.discs, objective, self.pool_a, self.pool_b, s.autocast)

        self.source = build_source(cfg.data, batch=cfg.train.batch_size, rank=s.rank, world=s.world_size,
                                   seed=cfg.train.seed)
        spe = self.source.steps_per_epoch
        self.total_steps = cfg.train.steps if cfg.train.steps is not None else cfg.train.epochs * spe
        decay = cfg.optim.decay_steps if cfg.optim.decay_steps is not None else cfg.optim.decay_epochs * spe
        factor = linear_decay(self.total_steps, decay)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.gens.optimizer, factor)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.discs.optimizer, factor)
        self.step = 0
        self.stopped_early = False

        self.store = CheckpointStore(self.run_dir / "checkpoints", s, cfg.train.keep)
        self.resumed_from: Path | None = None
        latest = self.store.latest() if cfg.train.resume else None
        if latest is not None:
            self.load(latest)
            self.resumed_from = latest

    # --- state ---------------------------------------------------------------------------------

    def shared_state(self) -> dict:
        return {
            "format": FORMAT,
            "step": self.step,
            "world_size": self.strategy.world_size,
            "strategy": self.strategy.name,
            "config": self.cfg.to_dict(),
            "generators": self.gens.state_dict(),
            "discriminators": self.discs.state_dict(),
            "schedule": {"generators": self.sched_g.state_dict(), "discriminators": self.sched_d.state_dict()},
        }

    def rank_state(self) -> dict:
        return {
            "step": self.step,
            "buffers": {"A": self.pool_a.state_dict(), "B": self.pool_b.state_dict()},
            "rng": rng_state(),
            "data": {"step": self.step, "world_size": self.strategy.world_size,
                     "batch_size": self.cfg.train.batch_size},
        }

    def save(self) -> Path:
        return self.store.save(self.step, self.shared_state(), self.rank_state(), self.strategy.save_sharded)

    def load(self, path: Path) -> None:
        shared, own = self.store.load(path, self.strategy.rank)
        for name, trainable in (("generators", self.gens), ("discriminators", self.discs)):
            try:
                trainable.load_state_dict(shared[name], folder=path)
            except (RuntimeError, KeyError, ValueError) as e:
                raise CheckpointError(
                    f"checkpoint {path} does not match the recipe's {name} "
                    f"(model.generator / model.discriminator): {str(e).splitlines()[0]} ... "
                    f"Use the recipe the run was trained with ({path / 'train.pt'} holds it), "
                    f"or a new train.run_dir."
                ) from None
        self.sched_g.load_state_dict(shared["schedule"]["generators"])
        self.sched_d.load_state_dict(shared["schedule"]["discriminators"])
        self.step = int(shared["step"])
        if own is None or own["data"]["world_size"] != self.strategy.world_size:
            if self.strategy.is_main:
                print(f"cgx: {path} was written by {shared['world_size']} ranks, this run has "
                      f"{self.strategy.world_size}: image buffers and random streams start fresh")
            return
        self.pool_a.load_state_dict(own["buffers"]["A"])
        self.pool_b.load_state_dict(own["buffers"]["B"])
        set_rng_state(own["rng"])

    # --- the loop ------------------------------------------------------------------------------

    def fit(self, until: int | None = None) -> Path | None:
        """Train to the recipe's last step (or stop early at step ``until``, with a checkpoint there)."""
        cfg, s = self.cfg.train, self.strategy
        stop = self.total_steps if until is None else min(until, self.total_steps)
        if s.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            dump_config(self.cfg, self.run_dir / "config.yaml")
        log = Logger(self.run_dir, self.step, self.total_steps, cfg.progress) if s.is_main else NullLogger()
        log.print(f"cgx: world size {s.world_size} ({s.name}, {s.device.type}), step {self.step} of "
                  f"{self.total_steps}, run folder {self.run_dir}")
        if self.resumed_from is not None:
            log.print(f"cgx: resumed from {self.resumed_from} at step {self.step}")
        request = StopRequest(self.run_dir / "STOP")
        self.stopped_early = False
        last_saved = self.step if self.resumed_from is not None else None
        images_per_step = s.world_size * cfg.batch_size
        window = {"time": 0.0, "data": 0.0, "steps": 0}
        skipped = None  # corrupt samples the source skipped on this rank since (re)start (None: not counted)
        try:
            batches = self.source.batches(self.step, stop)
            t_ready = time.perf_counter()
            for batch in batches:
                t_got = time.perf_counter()
                real_a = self._to_device(batch["A"])
                real_b = self._to_device(batch["B"])
                if "skipped" in batch:  # sources that skip corrupt samples count them (cgx.data.shards)
                    skipped = (skipped or 0) + int(batch["skipped"])
                losses, t = self.cycle_step(real_a, real_b)
                self.sched_g.step()
                self.sched_d.step()
                self.step += 1
                values, stop_now = self._reduce(losses, request.requested())
                t_done = time.perf_counter()
                window["data"] += t_got - t_ready
                window["time"] += t_done - t_ready
                window["steps"] += 1
                t_ready = t_done

                log.progress(self.step, {"G": f"{sum(v for k, v in values.items() if k.startswith('G/')):.3f}",
                                         "D": f"{values['D/A'] + values['D/B']:.3f}"})
                if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                    n = window["steps"]
                    log.scalars(self.step, {
                        **{f"loss/{k}": v for k, v in values.items()},
                        "lr/generators": self.sched_g.get_last_lr()[0],
                        "lr/discriminators": self.sched_d.get_last_lr()[0],
                        "perf/images_per_s": images_per_step * n / max(window["time"], 1e-9),
                        "perf/step_time_s": window["time"] / n,
                        "perf/data_wait_s": window["data"] / n,
                        "epoch": self.step / self.source.steps_per_epoch,
                    })
                    window = {"time": 0.0, "data": 0.0, "steps": 0}
                    if skipped is not None:  # a collective: every rank logs at the same steps
                        total = s.all_reduce_mean(torch.tensor([float(skipped)], device=self.device))
                        log.scalars(self.step, {"data/skipped": round(total.item() * s.world_size)})
                if cfg.image_every and self.step % cfg.image_every == 0:
                    log.images(self.step, "A->B->A (real, fake, reconstructed)", [real_a, t.fake_b, t.rec_a])
                    log.images(self.step, "B->A->B (real, fake, reconstructed)", [real_b, t.fake_a, t.rec_b])
                if self.step % cfg.ckpt_every == 0 or self.step == self.total_steps or stop_now:
                    path = self.save()
                    last_saved = self.step
                    log.print(f"cgx: step {self.step}: checkpoint {path}")
                if stop_now and self.step < stop:
                    if s.is_main:
                        request.clear()
                    log.print(f"cgx: stopped at step {self.step} on request ({request.reason()}); "
                              f"running the same command again resumes from {path}")
                    self.stopped_early = True
                    break
            if self.step >= stop and last_saved != self.step:
                self.save()
        finally:
            request.close()
            log.close()
        return self.store.latest()

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.train.channels_last else x

    def _reduce(self, losses: dict, stop_requested: bool) -> tuple[dict, bool]:
        """Average the loss terms over ranks (for the logs), stop every rank on a NaN/inf, and
        tell every rank whether any rank was asked to stop (one all-reduce for all of it)."""
        names = list(losses)
        flag = torch.tensor([float(stop_requested)], device=self.device)
        stacked = torch.cat([torch.stack([losses[k].float() for k in names]), flag])
        *values, stop_now = self.strategy.all_reduce_mean(stacked).tolist()
        bad = [k for k, v in zip(names, values) if not math.isfinite(v)]
        if bad:
            raise NonFiniteLossError(
                f"non-finite loss at step {self.step}: {', '.join(f'{k}={values[names.index(k)]}' for k in bad)}; "
                f"stopped without writing a checkpoint (the last good one is {self.store.latest()})"
            )
        return dict(zip(names, values)), stop_now > 0

    def close(self) -> None:
        self.cycle_step = None
        self.gens = self.discs = None
        self.strategy.close()
