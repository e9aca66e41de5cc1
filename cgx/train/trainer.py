"""The Trainer owns the run: networks, optimizers, schedule, buffers, data position, logs and
checkpoints. It is itself checkpointable; distribution is the strategy's business.

The loop does not wait for the device: loss terms stay on it (``LossMeter``) and are reduced over
ranks on log steps only; NaN/inf is noted on the device every step and checked on log steps and
before every checkpoint; stop requests are agreed over a host-side channel (one step late when
there are several ranks: ``StopVote``)."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

from ..config import Config, dump_config
from ..data import build_source
from ..distributed import build_strategy
from ..errors import CgxError, CheckpointError, ConfigError, NonFiniteLossError, SetupError
from ..interop.init_from import load_initial_weights
from ..plugins import Registry, default_registry
from ..precision import describe as describe_precision
from . import components
from .checkpoint import CheckpointStore, Group, list_checkpoints, newest_good
from .lock import RunLock
from .logger import Logger, NullLogger
from .metrics import LossMeter
from .activation_checkpointing import enable_activation_checkpointing
from .optim import build_optimizer
from .rng import RNGState, seed_everything
from .schedule import linear_decay
from .step import CycleGANStep, Objective
from .stop import STOPPED_FILE, StopRequest, mark_stopped

FORMAT = 1
"""Checkpoint format this code writes and reads (``train.pt``'s "format")."""


class Trainer:
    def __init__(self, cfg: Config, registry: Registry | None = None, strategy=None) -> None:
        self.cfg = cfg
        self.registry = registry or default_registry()
        components.load_recipe_plugins(cfg, self.registry)
        components.check_components(cfg, self.registry)
        self.run_dir = Path(cfg.train.run_dir)
        self.strategy = strategy or build_strategy(cfg.distributed, cfg.train)
        s = self.strategy
        self.device = s.device
        self.lock = RunLock(self.run_dir) if s.is_main else None
        self._on_main(lambda: self.lock.acquire())
        try:
            self._build(cfg)
        except BaseException:
            self._release_lock()
            raise

    def _build(self, cfg: Config) -> None:
        s = self.strategy

        # The same initial weights on every rank (DDP also broadcasts rank 0's).
        seed_everything(cfg.train.seed)
        gens, discs = components.build_networks(cfg, self.registry)
        enable_activation_checkpointing((gens.G, gens.F), cfg)
        self.initialised_from = None
        if cfg.train.init_from and (cfg.train.start_over
                                     or not (cfg.train.resume and list_checkpoints(self.run_dir / "checkpoints"))):
            self.initialised_from = load_initial_weights(cfg.train.init_from, gens, discs)
            if s.is_main:
                print(f"cgx: train.init_from: {self.initialised_from}")
        memory_format = torch.channels_last if cfg.train.channels_last else torch.preserve_format
        gens.to(self.device, memory_format=memory_format)
        discs.to(self.device, memory_format=memory_format)
        if cfg.train.compile:
            for net in (gens.G, gens.F, discs.D_A, discs.D_B):
                net.compile()
        offload = cfg.distributed.offload_optimizer
        self.gens = s.wrap(gens, build_optimizer(gens.parameters(), cfg.optim, offload), name="generators")
        self.discs = s.wrap(discs, build_optimizer(discs.parameters(), cfg.optim, offload), name="discriminators")

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
        self.meter = LossMeter(self.device)

        self.store = CheckpointStore(
            self.run_dir / "checkpoints", s, keep=cfg.train.keep, every=cfg.train.ckpt_every,
            last_step=self.total_steps,
            shared={"generators": self.gens, "discriminators": self.discs,
                    "schedule": Group(generators=self.sched_g, discriminators=self.sched_d)},
            per_rank={"buffers": Group(A=self.pool_a, B=self.pool_b), "rng": RNGState()},
        )
        self.resumed_from: Path | None = None
        start = self._on_main(self._choose_start)
        if start >= 0:
            self.resumed_from = self.store.folder / f"step_{start:08d}"
            self.load(self.resumed_from)
        self.evaluation = None  # FID/KID after the checkpoints of eval.every steps (cgx.eval.during_training)
        if cfg.eval.every:
            from ..eval.during_training import DuringTraining
            self.evaluation = DuringTraining(cfg, s, self.run_dir)

    def _choose_start(self) -> int:
        """Rank 0: the step of the checkpoint to resume from (-1: start at 0), after making the run
        folder ready: a fresh start into another run's folder refused or that run moved aside,
        leftovers of interrupted saves removed, damaged checkpoints moved aside."""
        t = self.cfg.train
        where = self.cfg.recipe or "<recipe>"
        existing = list_checkpoints(self.store.folder)
        if existing and not t.resume and not t.start_over:
            raise ConfigError(
                f"{where}: train.resume=false, but {self.run_dir} holds another run's checkpoints (newest "
                f"{existing[-1].name}); resume it (train.resume=true), use another train.run_dir, or add "
                f"train.start_over=true to move that run into {self.run_dir}/replaced-<date-time>/ and start at 0")
        if t.start_over:
            self._move_run_aside()
            return -1
        self.store.clean_leftovers()
        if not t.resume:
            return -1
        good = newest_good(self.store.folder, move_damaged=True)
        if good is None and existing:
            raise CheckpointError(f"every checkpoint in {self.store.folder} is damaged (see the warnings above); "
                                  f"they are kept there as damaged_step_*; set train.start_over=true to start at 0")
        return int(good.name.split("_")[1]) if good is not None else -1

    def _move_run_aside(self) -> None:
        parts = [self.run_dir / n for n in ("checkpoints", "tb", "config.yaml", STOPPED_FILE)]
        parts = [p for p in parts if p.exists()]
        if not parts:
            return
        target = self.run_dir / time.strftime("replaced-%Y%m%d-%H%M%S")
        n = 1
        while target.exists():
            n += 1
            target = target.with_name(f"{target.name.split('.')[0]}.{n}")
        target.mkdir(parents=True)
        for p in parts:
            os.replace(p, target / p.name)
        print(f"cgx: train.start_over: moved the previous run's {', '.join(p.name for p in parts)} into {target}",
              file=sys.stderr)

    def _on_main(self, fn) -> int:
        """Collective: run ``fn`` on rank 0 only and give every rank its integer result; a CgxError
        there is raised on every rank (rank 0's message; the others point to it), so no rank waits."""
        s = self.strategy
        result, error = 0, None
        if s.is_main:
            try:
                result = int(fn() or 0)
            except CgxError as e:
                error = e
        flag = torch.tensor([1 if error is not None else 0, result if s.is_main else -2**62], device=self.device)
        failed, result = s.all_reduce(flag, "max").tolist()
        if failed:
            if error is not None:
                raise error
            raise SetupError("rank 0 could not set up the run folder (its error says why)")
        return int(result)

    def _release_lock(self) -> None:
        if self.lock is not None:
            self.lock.release()

    # --- state ---------------------------------------------------------------------------------

    def save(self) -> Path:
        """Collective: a checkpoint of this step, after checking that nothing in it is NaN/inf."""
        self._check_finite_state()
        s = self.strategy
        meta = {"format": FORMAT, "step": self.step, "world_size": s.world_size, "strategy": s.name,
                "config": self.cfg.to_dict()}
        rank_meta = {"step": self.step,
                     "data": {"step": self.step, "world_size": s.world_size, "batch_size": self.cfg.train.batch_size}}
        return self.store.save(self.step, meta, rank_meta)

    def load(self, path: Path) -> None:
        s = self.strategy
        shared, own = self.store.read(path, FORMAT)
        self.store.load_shared(path, shared)
        self.step = int(shared["step"])
        if own is None or own["data"]["world_size"] != s.world_size:
            if s.is_main:
                print(f"cgx: {path} was written by {shared['world_size']} ranks, this run has "
                      f"{s.world_size}: image buffers and random streams start fresh")
            return
        self.store.load_rank(path, own)

    def _check_finite_state(self) -> None:
        """Collective: NonFiniteLossError on every rank if a loss term since the last check, a weight
        or an optimizer state tensor is NaN/inf, so that a checkpoint never holds one."""
        self.meter.check_finite(self.strategy, self._not_saved)
        tensors = [p.detach() for t in (self.gens, self.discs) for p in t.module.parameters()]
        for t in (self.gens, self.discs):
            for state in t.optimizer.state.values():
                tensors += [v for v in state.values() if torch.is_tensor(v) and v.is_floating_point()]
        flags = torch.stack([torch.isfinite(x).all() for x in tensors]) if tensors else torch.ones(1, dtype=torch.bool)
        bad = self.strategy.all_reduce((~flags.all()).to(torch.int32).reshape(1), "max")
        if bad.item():
            raise NonFiniteLossError(f"non-finite weights or optimizer state at step {self.step}; {self._not_saved()}")

    def _not_saved(self) -> str:
        return f"stopped without writing a checkpoint (the last good one is {self.store.latest()})"

    # --- the loop ------------------------------------------------------------------------------

    def fit(self, until: int | None = None) -> Path | None:
        """Train to the recipe's last step (or stop early at step ``until``, with a checkpoint there)."""
        cfg, s = self.cfg.train, self.strategy
        stop = self.total_steps if until is None else min(until, self.total_steps)
        self.store.last_step = stop
        if s.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            dump_config(self.cfg, self.run_dir / "config.yaml")
            (self.run_dir / STOPPED_FILE).unlink(missing_ok=True)  # this launch trains on
        log = Logger(self.run_dir, self.step, self.total_steps, cfg.progress) if s.is_main else NullLogger()
        log.print(f"cgx: world size {s.world_size} ({s.name}, {s.device.type}, "
                  f"{describe_precision(cfg.precision, s.device)}), step {self.step} of "
                  f"{self.total_steps}, run folder {self.run_dir}")
        if self.resumed_from is not None:
            log.print(f"cgx: resumed from {self.resumed_from} at step {self.step}")
        request = StopRequest(self.run_dir / "STOP")
        self.stopped_early = False
        timer = StepTimer()
        skipped = None  # corrupt samples the source skipped on this rank since (re)start (None: not counted)
        vote = s.stop_vote()
        batches = self.source.batches(self.step, stop)
        try:
            for batch in batches:
                timer.got_data()
                real_a, real_b = self._to_device(batch["A"]), self._to_device(batch["B"])
                if "skipped" in batch:  # sources that skip corrupt samples count them (cgx.data.shards)
                    skipped = (skipped or 0) + int(batch["skipped"])

                losses, t = self.cycle_step(real_a, real_b)
                self.sched_g.step()
                self.sched_d.step()
                self.step += 1
                self.meter.add(self.step, losses)

                stop_now = vote.update(request.requested())
                timer.step_done()
                log.progress(self.step)
                if self.step % cfg.log_every == 0 or self.step == stop:
                    self._log_scalars(log, timer, skipped)
                if cfg.image_every and self.step % cfg.image_every == 0:
                    log.images(self.step, "A->B->A (real, fake, reconstructed)", [real_a, t.fake_b, t.rec_a])
                    log.images(self.step, "B->A->B (real, fake, reconstructed)", [real_b, t.fake_a, t.rec_b])
                if self.store.due(self.step) or stop_now:
                    path = self.save()
                    log.print(f"cgx: step {self.step}: checkpoint {path}")
                    if self.evaluation is not None and self.evaluation.due(self.step, self.step == stop):
                        self.evaluation(self.step, path, self.gens.module, log)
                if stop_now and self.step < stop:
                    if s.is_main:
                        request.clear()
                        mark_stopped(self.run_dir, self.step, request.reason())
                    log.print(f"cgx: stopped at step {self.step} on request ({request.reason()}); "
                              f"running the same command again resumes from {path}")
                    self.stopped_early = True
                    break
            vote.finish()  # every rank asked it; answer it before anything else talks
        finally:
            if hasattr(batches, "close"):
                batches.close()  # shut the loader workers down now, even after an error
            request.close()
            log.close()
        return self.store.latest()

    def _log_scalars(self, log, timer: "StepTimer", skipped: int | None) -> None:
        """Collective (every rank logs at the same steps): the loss terms' means since the last log."""
        s = self.strategy
        values = self.meter.reduce(s)
        log.scalars(self.step, {
            **{f"loss/{k}": v for k, v in values.items()},
            "lr/generators": self.sched_g.get_last_lr()[0],
            "lr/discriminators": self.sched_d.get_last_lr()[0],
            **timer.report(s.world_size * self.cfg.train.batch_size),
            "epoch": self.step / self.source.steps_per_epoch,
        })
        log.progress(self.step, {"G": f"{sum(v for k, v in values.items() if k.startswith('G/')):.3f}",
                                 "D": f"{sum(v for k, v in values.items() if k.startswith('D/')):.3f}"})
        if skipped is not None:
            total = s.all_reduce(torch.tensor([float(skipped)], device=self.device), "sum")
            log.scalars(self.step, {"data/skipped": round(total.item())})
        self.meter.check_finite(s, self._not_saved)

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.train.channels_last else x

    def close(self) -> None:
        self.cycle_step = self.evaluation = None
        self.gens = self.discs = None
        try:
            self.strategy.close()
        finally:
            self._release_lock()


class StepTimer:
    """Step time and data-wait time, averaged over the steps since the last report."""

    def __init__(self) -> None:
        self.ready = time.perf_counter()
        self.data = self.total = 0.0
        self.steps = 0

    def got_data(self) -> None:
        self.got = time.perf_counter()
        self.data += self.got - self.ready

    def step_done(self) -> None:
        now = time.perf_counter()
        self.total += now - self.ready
        self.steps += 1
        self.ready = now

    def report(self, images_per_step: int) -> dict[str, float]:
        n = max(self.steps, 1)
        out = {"perf/images_per_s": images_per_step * self.steps / max(self.total, 1e-9),
               "perf/step_time_s": self.total / n, "perf/data_wait_s": self.data / n}
        self.data = self.total = 0.0
        self.steps = 0
        return out
