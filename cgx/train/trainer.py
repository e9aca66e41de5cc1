"""The Trainer owns the run: networks, optimizers, schedule, buffers, data position, logs and
checkpoints. It is itself checkpointable; distribution is the strategy's business.

The loop does not wait for the device: loss terms stay on it (``LossMeter``) and are reduced over
ranks on log steps only; NaN/inf is noted on the device every step and checked on log steps and
before every checkpoint; stop requests are agreed over a host-side channel (one step late when
there are several ranks: ``StopVote``)."""
from __future__ import annotations

import copy
import sys
import time
import warnings
from pathlib import Path

import torch

from ..config import Config, dump_config
from ..data import build_source
from ..data import trace
from ..distributed import build_strategy
from ..errors import CgxError, CheckpointError, ConfigError, NonFiniteLossError, SetupError
from ..interop.init_from import load_initial_weights
from ..outputs import check_run_config
from ..plugins import Registry, default_registry
from ..plugins.types import LogRun
from ..precision import describe as describe_precision
from ..run_dir import RunDir
from . import components, resize
from .checkpoint import (CheckpointStore, Group, clean_leftovers, list_checkpoints, load_file, newest_good,
                         rank_file, read_checkpoint, shared_meta, step_of)
from .global_batch import resolve_global_batch
from .lock import RunLock
from .logger import NullLog, RunLog
from .metrics import LossMeter
from .augment import AugmentUpdates, adaptive
from .ema import EMA
from .rng import RNGState
from .groups import INFERENCE_GROUP
from .schedule import lr_schedule
from .speed import WarmUp
from .wiring import wire_step
from .stop import StopRequest, mark_stopped
from ..safe_text import shown
from .recipe_changes import describe_changes, recipe_changes


class Trainer:
    def __init__(self, cfg: Config, registry: Registry | None = None, strategy=None) -> None:
        self.cfg = cfg
        self.registry = registry or default_registry()
        components.load_recipe_plugins(cfg, self.registry)
        components.check_components(cfg, self.registry)
        self.run_dir = Path(cfg.train.run_dir)
        self.folder = RunDir(self.run_dir)
        self.strategy = strategy or build_strategy(cfg.distributed, cfg.train)
        s = self.strategy
        self.device = s.device
        self.lock = RunLock(self.folder.lock) if s.is_main else None
        self._on_main(self._claim)
        try:
            self._build(cfg)
        except BaseException:
            self._release_lock()
            raise

    def _claim(self) -> None:
        """Rank 0: the run folder checked as one cgx may write into (``RunDir.claim``), then locked."""
        self.folder.claim(self.cfg.recipe or "<recipe>", data_folders(self.cfg))
        self.lock.acquire()

    def _build(self, cfg: Config) -> None:
        s = self.strategy
        self.loggers = []  # rank 0's (cgx.train.logger): built first, so a missing package stops the run at once
        self._on_main(self._build_loggers)
        # Resume or not, decided once, before anything is built: the step to resume from (-1: step 0).
        start = self._on_main(self._choose_start)

        self.initialised_from = None
        # The run's global batch (a resumed run keeps its checkpoint's) and this world size's accumulation.
        resumed = (read_checkpoint(self.folder.checkpoint(start), None if s.is_main else (lambda text: None))
                   if start >= 0 else None)  # rank 0 says what a format conversion did
        self.global_batch = resolve_global_batch(cfg.train, s.world_size, resumed, cfg.recipe or "<recipe>")
        self.accumulation = s.accumulation = self.global_batch.accumulation

        def initialise(groups) -> None:  # train.init_from, for a run that starts at step 0
            self.initialised_from = load_initial_weights(cfg.train.init_from, groups)
            if s.is_main:
                print(f"cgx: train.init_from: {self.initialised_from}")

        wired = wire_step(cfg, self.registry, s, initialise if cfg.train.init_from and start < 0 else None,
                          starts_run=start < 0)
        self.method, self.groups, self.method_step = wired.method, wired.groups, wired.step
        self.speed = wired.speed
        self.augment = (AugmentUpdates(wired.augment, s, self.global_batch.size)
                        if adaptive(wired.augment) else None)  # ADA: p updated after each step, logged, saved
        self.buffers = wired.buffers
        self.warm_up = WarmUp(self.speed.compile)
        self.ema = EMA(self.gens.module, cfg.train.ema) if cfg.train.ema else None

        self.source = build_source(cfg.data, batch=cfg.train.batch_size, rank=s.rank, world=s.world_size,
                                   seed=cfg.train.seed, accumulation=self.accumulation)
        spe = self.source.steps_per_epoch
        self.total_steps = cfg.train.steps if cfg.train.steps is not None else cfg.train.epochs * spe
        self.schedules = {name: lr_schedule(group.optimizer, cfg.optim.for_group(name), self.total_steps, spe)
                          for name, group in self.groups.items()}
        self.step = 0
        self.stopped_early = False
        self.meter = LossMeter(self.device)

        self.store = CheckpointStore(
            self.folder.checkpoints, s, keep=cfg.train.keep, every=cfg.train.ckpt_every,
            last_step=self.total_steps,
            shared={"groups": Group("network group", **self.groups),
                    "schedules": Group("schedule of group", **self.schedules),
                    **({"ema": self.ema} if self.ema is not None else {}),
                    **({"augment": self.augment} if self.augment is not None else {})},
            per_rank={"method": self.method_step, "rng": RNGState(), "buffers": resize.Buffers(self.buffers)},
        )
        self.resumed_from: Path | None = None
        self.resized: str | None = None  # what a resume on another world size carried over (logged once)
        self.changes: str | None = None  # recipe keys changed since the checkpoint (logged once)
        if start >= 0:
            self.resumed_from = self.folder.checkpoint(start)
            self.load(self.resumed_from, resumed)
            self.changes = describe_changes(recipe_changes(resumed.get("config"), cfg.to_dict()),
                                            shown(self.resumed_from.name))
        self.evaluation = None  # FID/KID after the checkpoints of eval.every steps (cgx.eval.periodic)
        if cfg.eval.every:
            from ..eval.periodic import PeriodicEvaluation
            learned = tuple(self.method.translators(self.gens.module))
            self.evaluation = PeriodicEvaluation(cfg, s, self.folder, learned)

    @property
    def gens(self):
        """The ``generators`` group, wrapped (what inference loads, what ``train.ema`` averages)."""
        return self.groups[INFERENCE_GROUP]

    @property
    def discs(self):
        """The ``discriminators`` group, wrapped, where the method has one (else None): the conventional name."""
        return self.groups.get("discriminators")

    def _build_loggers(self) -> None:
        self.loggers = components.build_loggers(self.cfg, self.registry)

    def _choose_start(self) -> int:
        """Rank 0: the step of the checkpoint to resume from (-1: start at 0), after making the run
        folder ready: a fresh start into another run's folder refused or that run moved aside,
        leftovers of interrupted saves removed, damaged checkpoints moved aside."""
        t = self.cfg.train
        where = self.cfg.recipe or "<recipe>"
        existing = list_checkpoints(self.folder.checkpoints)
        if existing and not t.resume and not t.start_over:
            raise ConfigError(
                f"{where}: train.resume=false, but {self.run_dir} holds another run's checkpoints (newest "
                f"{existing[-1].name}); resume it (train.resume=true), use another train.run_dir, or add "
                f"train.start_over=true to move that run into {self.run_dir}/replaced-<date-time>/ and start at 0")
        if t.start_over:
            self._move_run_aside()
            return -1
        check_run_config(self.folder.config, bool(existing))  # never a user's own config.yaml
        clean_leftovers(self.folder.checkpoints)
        if not t.resume:
            return -1
        good = newest_good(self.folder.checkpoints, move_damaged=True)
        if good is None and existing:
            raise CheckpointError(f"every checkpoint in {self.folder.checkpoints} is damaged (see the warnings above); "
                                  f"they are kept there as damaged_step_*; set train.start_over=true to start at 0")
        return step_of(good) if good is not None else -1

    def _move_run_aside(self) -> None:
        parts = [p.name for p in self.folder.parts()]
        target = self.folder.move_aside()
        if target is not None:
            print(f"cgx: train.start_over: moved the previous run's {', '.join(parts)} into {shown(target)}",
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
        meta = shared_meta(self.step, s.world_size, s.name, self.cfg.to_dict())
        epoch, step_in_epoch = divmod(self.step, self.source.steps_per_epoch)
        # The data position in global samples (a function of the step for a fixed global batch).
        meta["data"] = {"global_batch": self.global_batch.size, "epoch": epoch,
                        "sample": step_in_epoch * self.global_batch.size}
        rank_meta = {"step": self.step,
                     "data": {"step": self.step, "world_size": s.world_size, "batch_size": self.cfg.train.batch_size}}
        return self.store.save(self.step, meta, rank_meta)

    def load(self, path: Path, shared: dict | None = None) -> None:
        s = self.strategy
        if shared is None:
            shared, own = self.store.read(path)
        else:  # train.pt already read (for the global batch): this rank's file only
            own = load_file(path / rank_file(s.rank)) if (path / rank_file(s.rank)).is_file() else None
        self.store.load_shared(path, shared)
        self.step = int(shared["step"])
        if own is not None and own["data"]["world_size"] == s.world_size:
            self.store.load_rank(path, own)
            return
        # Another world size (or no per-rank state): cgx.train.resize carries over what it can.
        written_by = int(shared["world_size"])
        saved = self.store.read_ranks(path, written_by, "buffers") if own is not None else None
        pools = resize.carry_over(self.buffers, saved, self.cfg.train.seed, self.step, s.rank, s.world_size)
        reason = resize.change_reason(written_by, s.world_size, own is not None)
        if own is None and written_by == s.world_size:  # an imported checkpoint: nothing per rank to carry
            self.resized = f"cgx: {shown(path)}: {reason}: image pools and random streams start fresh"
        else:
            self.resized = (f"cgx: world size changed: {shown(path.name)} was {reason}; {pools}; random streams "
                            f"reseeded from (seed, step {self.step}, rank); {self._batch_plan()}")

    def _batch_plan(self) -> str:
        """The global batch (train.global_batch_size) and how this world size makes it up."""
        ranks, micro, accumulation = self.strategy.world_size, self.cfg.train.batch_size, self.accumulation
        return (f"global batch {self.global_batch.size} = {ranks} rank{'s' if ranks != 1 else ''} x "
                f"{micro} per rank x {accumulation} accumulation step{'s' if accumulation != 1 else ''}")

    def _check_finite_state(self) -> None:
        """Collective: NonFiniteLossError on every rank if a loss term since the last check, a weight
        or an optimizer state tensor is NaN/inf, so that a checkpoint never holds one."""
        self.meter.check_finite(self.strategy, self._not_saved)
        tensors = [p.detach() for t in self.groups.values() for p in t.module.parameters()]
        for t in self.groups.values():
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
            dump_config(self.cfg, self.folder.config)
            self.folder.stopped.unlink(missing_ok=True)  # this launch trains on
        log = NullLog()
        if s.is_main:
            name = self.run_dir.resolve().name
            log = RunLog(self.loggers, LogRun(self.folder, name, self.step, self.total_steps), cfg.progress)
            if self.step == 0:
                log.recipe(self.cfg.to_dict())
        log.print(f"cgx: world size {s.world_size} ({s.name}, {s.device.type}, "
                  f"{describe_precision(cfg.precision, s.device)}), step {self.step} of "
                  f"{self.total_steps}, run folder {self.run_dir}; speed: {self.speed.describe()}")
        log.print(f"cgx: global batch {self.global_batch.size} = {cfg.batch_size} x {s.world_size} rank"
                  f"{'s' if s.world_size != 1 else ''} x {self.accumulation} accumulation")
        if self.global_batch.changed_from is not None and self.resumed_from is not None:
            log.print(f"cgx: train.global_batch_size={self.global_batch.size}, the checkpoint's run used "
                      f"{self.global_batch.changed_from}: the data position continues by step, not sample for sample")
        if self.resumed_from is not None:
            log.print(f"cgx: resumed from {self.resumed_from} at step {self.step}")
        if self.changes is not None:
            log.print(self.changes)
            self.changes = None
        if self.resized is not None:
            log.print(self.resized)
            self.resized = None  # once per launch, not again on a second fit()
        request = StopRequest(self.folder.stop)
        self.stopped_early = False
        timer = StepTimer()
        skipped = None  # corrupt samples the source skipped on this rank since (re)start (None: not counted)
        vote = s.stop_vote()
        batches = self.source.batches(self.step, stop)
        warm_up = self.warm_up  # logs "cgx: compiled in ... s" once, when a step compiles nothing new
        slot = 0  # the micro-batch of the optimizer step (0 .. accumulation - 1)
        try:
            for batch in batches:
                if slot == 0:
                    timer.got_data()
                    warm_up.step_started()
                real_a, real_b = self._to_device(batch["A"]), self._to_device(batch["B"])
                if "skipped" in batch:  # sources that skip corrupt samples count them (cgx.data.shards)
                    skipped = (skipped or 0) + int(batch["skipped"])

                self.speed.begin_step()
                for group in self.groups.values():  # optim.<group>.update_every, from the global step
                    group.at_step(self.step)
                s.micro_batch(slot)
                losses, images = self.method_step(real_a, real_b, **self._labels_of(batch))
                s.micro_batch_done()
                self.meter.add(self.step + 1, losses)
                if "trace" in batch:  # the test hook (cgx.data.trace)
                    trace.write(self.step, s.rank * self.accumulation + slot, s.rank, batch["trace"])
                slot = (slot + 1) % self.accumulation
                if slot:
                    continue
                if self.ema is not None and self.gens.updates:
                    self.ema.update(self.gens.module)
                if self.augment is not None:
                    self.augment.step_done()
                with warnings.catch_warnings():  # a group that has not stepped yet (a method's pretraining phase)
                    warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
                    for schedule in self.schedules.values():  # the schedules follow the global step, every group's
                        schedule.step()
                self.step += 1

                stop_now = vote.update(request.requested())
                timer.step_done()
                compiled = warm_up.step_done()
                if compiled:
                    log.print(compiled)
                log.progress(self.step)
                if self.step % cfg.log_every == 0 or self.step == stop:
                    self._log_scalars(log, timer, skipped)
                if cfg.image_every and self.step % cfg.image_every == 0:
                    for title, rows in images.items():
                        log.images(self.step, title, rows)
                if self.store.due(self.step) or stop_now:
                    path = self.save()
                    log.event(self.step, "checkpoint", path=str(path.resolve()))
                    log.print(f"cgx: step {self.step}: checkpoint {path}")
                    if self.evaluation is not None and self.evaluation.due(self.step, self.step == stop):
                        self.evaluation(self.step, path, self.method.translators(self.gens.module), log,
                                        ema=self._ema_translators())
                if stop_now and self.step < stop:
                    reason = request.reason()  # once, before the stop file is cleared: STOPPED and the log agree
                    if s.is_main:
                        request.clear()
                        mark_stopped(self.folder, self.step, reason)
                    log.print(f"cgx: stopped at step {self.step} on request ({reason}); "
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

    def _ema_translators(self) -> dict | None:
        """The method's translators with the EMA weights (a copy of the generator group), or None."""
        if self.ema is None:
            return None
        group = copy.deepcopy(self.gens.module)
        group.load_state_dict(self.ema.shadow)
        return self.method.translators(group.eval())

    def _log_scalars(self, log, timer: "StepTimer", skipped: int | None) -> None:
        """Collective (every rank logs at the same steps): the loss terms' means since the last log."""
        s = self.strategy
        values = self.meter.reduce(s)
        scalars = {
            **{f"loss/{k}": v for k, v in values.items()},
            **{f"lr/{name}": schedule.get_last_lr()[0] for name, schedule in self.schedules.items()},
            **timer.report(self.global_batch.size),
            "epoch": self.step / self.source.steps_per_epoch,
            **(self.augment.scalars() if self.augment is not None else {}),
        }
        if skipped is not None:
            total = s.all_reduce(torch.tensor([float(skipped)], device=self.device), "sum")
            scalars["data/skipped"] = round(total.item())
        log.scalars(self.step, scalars)
        log.progress(self.step, {"G": f"{sum(v for k, v in values.items() if k.startswith('G/')):.3f}",
                                 "D": f"{sum(v for k, v in values.items() if k.startswith('D/')):.3f}"})
        self.meter.check_finite(s, self._not_saved)

    def _labels_of(self, batch: dict) -> dict:
        """``labels_a``, ``labels_b`` (int64 (N, H, W) on the device, or None where a domain has no labels:
        ``data.a.labels``) for a method whose object says ``uses_labels = True``; nothing for the others,
        which are called as always."""
        if not getattr(self.method, "uses_labels", False):
            return {}
        return {f"labels_{d.lower()}": (batch[f"{d}_labels"].to(self.device, non_blocking=True)
                                        if f"{d}_labels" in batch else None) for d in ("A", "B")}

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.speed.channels_last else x

    def close(self) -> None:
        self.method_step = self.evaluation = None
        if getattr(self, "source", None) is not None:
            self.source.close()
        self.groups = None
        try:
            self.strategy.close()
        finally:
            self._release_lock()


def data_folders(cfg: Config) -> list[Path]:
    """The folders of images the run reads (its domain folders, the test folders of eval): a run folder
    inside one of them would add its own files to the data."""
    d = cfg.data
    found = []
    if d.source == "folder":
        root = Path(d.root)
        found += [root / d.phase] if d.paired else [root / f"{d.phase}A", root / f"{d.phase}B"]
        found += [root / f"{d.phase}{x.upper()}_labels" for x in ("a", "b") if not d.paired and getattr(d, x).labels]
    found += [Path(p) for p in (cfg.eval.a, cfg.eval.b, cfg.eval.pairs) if p and "{" not in p and "::" not in p]
    found += [Path(p) for p in (cfg.eval.labels, cfg.eval.labels_b) if p]
    return found


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
