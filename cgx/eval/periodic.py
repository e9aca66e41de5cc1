"""Evaluation during training (the recipe's ``eval`` section), called by ``Trainer.fit`` right after
a checkpoint is written at an evaluation step.

Every rank takes part (``cgx.eval.evaluate``, translations in fp32 as ``cgx eval``'s default); rank 0
writes ``RUN/eval/step_NNNNNNNN.json`` and its results page ``RUN/eval/step_NNNNNNNN/index.html``
(``cgx.eval.page``: a few PNGs, cheap beside a checkpoint; the images of the weights the best
checkpoint is chosen by: EMA where kept),
logs ``eval/FID_AtoB``, ``eval/KID_AtoB``, ``eval/KID_std_AtoB``, ``eval/cycle_L1_AtoB`` (and
``BtoA``) to every logger (``logging.backends``), and keeps the best checkpoint by ``eval.metric``
(lower is better) in ``RUN/best/``, telling the loggers (a ``best`` event): the checkpoint just
written (complete: the store renames it into place only when every rank has finished) is
hard-linked (copied across file systems) into ``best/.step_N.tmp`` and renamed to ``best/step_N``;
then ``best/best.json`` (metric, value, step, scores) is replaced atomically, then the older
``best/step_*`` is removed. ``best.json`` is what a resumed run reads,
so the best score survives restarts."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..config import Config
from ..errors import ConfigError
from ..run_dir import RunDir
from ..train.checkpoint import swap_into_place
from ..choices import DIRECTIONS
from .evaluate import directions_of, evaluate, metric_value, report, summary, translated_in, write_json
from .image_set import ImageSet
from .inception import InceptionFeatures, resolve_weights
from .page import Examples, recipe_text, write_page

BEST_FILE = "best.json"


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def keep_best(run: RunDir, checkpoint: Path, record: dict) -> Path:
    """``checkpoint`` as ``RUN/best/<its name>``, and ``record`` as ``best/best.json``, atomically."""
    best = run.best
    best.mkdir(parents=True, exist_ok=True)
    final, tmp = best / checkpoint.name, best / f".{checkpoint.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(checkpoint, tmp, copy_function=_link_or_copy)
    swap_into_place(tmp, final)  # the same step evaluated again (after a resume) replaces the old one
    write_json({**record, "checkpoint": str(final)}, best / BEST_FILE)
    for stale in best.glob("step_*"):
        if stale != final:
            shutil.rmtree(stale, ignore_errors=True)
    return final


def read_best(run: RunDir | Path) -> dict | None:
    path = RunDir(run.root if isinstance(run, RunDir) else run).best / BEST_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def _scalars(prefix: str, results: dict) -> dict:
    """The logged scalars of one evaluation: ``eval/FID_AtoB`` ...; scores that were skipped are left out."""
    out = {}
    for d, r in results.items():
        out.update({f"{prefix}/{name}_{d}": r[key] for name, key in
                    (("FID", "FID"), ("KID", "KID_mean"), ("KID_std", "KID_std"), ("cycle_L1", "cycle_L1"))
                    if r.get(key) is not None})
    return out


class PeriodicEvaluation:
    """Evaluation every ``eval.every`` steps of training. Built once per run (loads the Inception
    network and finds the test images before step 1)."""

    def __init__(self, cfg: Config, strategy, run: RunDir, learned: tuple[str, ...] = ("AtoB", "BtoA")) -> None:
        """``learned``: the directions the method translates (its ``translators()``)."""
        e = cfg.eval
        self.cfg, self.strategy, self.run = e, strategy, run
        self.directions = directions_of(e.directions, learned)
        missing = [d for d in self.directions if d not in learned]
        if missing:
            raise ConfigError(f"{cfg.recipe or '<recipe>'}: eval.directions={e.directions}: method {cfg.method.name} "
                              f"learns {', '.join(learned)} only; use eval.directions=both or {' or '.join(learned)}")
        self.weights = resolve_weights(e.inception, "eval.inception")
        self.features = InceptionFeatures(self.weights.path).to(strategy.device)
        root = Path(cfg.data.root)
        self.pairs = None  # with ground truth: cgx.eval.paired scores instead (eval.pairs, or paired data's test/)
        if e.pairs or cfg.data.paired:
            from .paired import PairSet

            self.pairs = PairSet(e.pairs or root / "test", "eval.pairs", e.max_images, cfg.data.a, cfg.data.b)
        else:
            self.set_a = ImageSet(e.a or root / "testA", "eval.a", e.max_images, cfg.data.a)
            self.set_b = ImageSet(e.b or root / "testB", "eval.b", e.max_images, cfg.data.b)
        self.command = f"training: {cfg.recipe or '<recipe>'} (eval section)"
        self.recipe = recipe_text(cfg)
        self.translated = translated_in("fp32", strategy.device)
        previous = read_best(self.run)
        self.best = previous["value"] if previous and previous.get("metric") == e.metric else None
        self.best_step = previous["step"] if self.best is not None else None

    def due(self, step: int, last: bool) -> bool:
        return step % self.cfg.every == 0 or last

    def _examples(self, paired: bool = False) -> Examples | None:
        return Examples(bands=self.cfg.bands, paired=paired) if self.strategy.is_main else None

    def _write(self, step: int, record: dict, examples: Examples | None) -> None:
        """Rank 0: the record and its results page."""
        target = self.run.eval_record(step)
        record["page"] = os.path.relpath(self.run.eval_page(step), target.parent)
        write_json(record, target)  # the scores first: they are what a resumed run and best/ go by
        write_page(self.run.eval_page(step), record, examples, self.recipe, record_file=target)

    def _scores(self, translators: dict, examples: Examples | None = None) -> dict:
        return evaluate(translators.get("AtoB"), translators.get("BtoA"), self.set_a, self.set_b, self.directions,
                        self.features, self.strategy, batch_size=self.cfg.batch_size, progress=False,
                        bands=self.cfg.bands, examples=examples)

    def __call__(self, step: int, checkpoint: Path, translators: dict, log, ema: dict | None = None) -> dict:
        """Collective: evaluate the method's ``translators`` (direction -> bare network) at ``step``,
        whose checkpoint was just written to ``checkpoint``; with ``ema`` (the same with the EMA
        weights, ``train.ema``) both, and the best checkpoint is chosen by the EMA scores (what
        translate, eval and export use by default)."""
        s = self.strategy
        if self.pairs is not None:  # scored against ground truth: the weights inference uses (EMA when kept)
            return self._paired(step, checkpoint, ema if ema is not None else translators, log,
                                "ema" if ema is not None else "raw")
        shown = self._examples()  # of the weights the best is chosen by
        results = self._scores(translators, shown if ema is None else None)
        ema_results = self._scores(ema, shown) if ema is not None else None
        chosen = ema_results if ema_results is not None else results
        value = metric_value(chosen, self.cfg.metric)
        better = self.best is None or value < self.best
        if s.is_main:
            record = report(results, step=step, checkpoint=str(checkpoint), set_a=self.set_a, set_b=self.set_b,
                            weights=self.weights, world_size=s.world_size, command=self.command, bands=self.cfg.bands,
                            translated=self.translated)
            record["generator_weights"] = "raw"
            if ema_results is not None:
                record["ema"] = ema_results
                record["best_by"] = "ema"
                record["page_images"] = "ema"
            self._write(step, record, shown)
            scalars = _scalars("eval", results)
            if ema_results is not None:
                scalars.update(_scalars("eval_ema", ema_results))
            log.scalars(step, scalars)
            if better:
                kept = keep_best(self.run, checkpoint, {"metric": self.cfg.metric, "value": value, "step": step,
                                                            "weights": "ema" if ema is not None else "raw",
                                                            "scores": chosen})
                log.event(step, "best", metric=self.cfg.metric, value=value, checkpoint=str(kept.resolve()))
            note = "new best" if better else f"best {self.cfg.metric} {self.best:.4f} at step {self.best_step}"
            ema_note = f"; EMA: {summary(ema_results)}" if ema_results is not None else ""
            log.print(f"cgx: step {step}: eval {summary(results)}{ema_note} ({note})")
        if better:
            self.best, self.best_step = value, step
        s.barrier()
        return results


    def _paired(self, step: int, checkpoint: Path, translators: dict, log, weights: str) -> dict:
        """The same with ground truth (``cgx.eval.paired``): L1, PSNR, SSIM and FID/KID per learnt direction,
        of the generator ``weights`` (``ema`` or ``raw``) that ``translators`` hold."""
        from ..errors import DataError
        from .paired import evaluate_paired, report_paired, summary_paired

        s = self.strategy
        shown = self._examples(paired=True)
        results = evaluate_paired(translators, self.pairs, self.directions, self.features, s,
                                  batch_size=self.cfg.batch_size, progress=False, bands=self.cfg.bands, examples=shown)
        which = self.cfg.metric.rpartition("_")[2]
        if any(d not in results for d in (DIRECTIONS if which == "mean" else (which,))):
            raise DataError(f"eval.metric={self.cfg.metric}: the method learns {', '.join(results)} only; set "
                            f"eval.metric to FID_{next(iter(results))} or KID_{next(iter(results))}")
        value = metric_value(results, self.cfg.metric)
        better = self.best is None or value < self.best
        if s.is_main:
            record = report_paired(results, step=step, checkpoint=str(checkpoint), pairs=self.pairs,
                                   weights=self.weights, world_size=s.world_size, command=self.command,
                                   bands=self.cfg.bands, translated=self.translated)
            record["generator_weights"] = weights
            self._write(step, record, shown)
            log.scalars(step, {f"eval/{k}_{d}": r[k] for d, r in results.items()
                               for k in ("L1", "PSNR", "SSIM", "FID", "KID_mean") if r[k] is not None})
            if better:
                kept = keep_best(self.run, checkpoint, {"metric": self.cfg.metric, "value": value, "step": step,
                                                            "weights": weights, "scores": results})
                log.event(step, "best", metric=self.cfg.metric, value=value, checkpoint=str(kept.resolve()))
            note = "new best" if better else f"best {self.cfg.metric} {self.best:.4f} at step {self.best_step}"
            log.print(f"cgx: step {step}: eval {summary_paired(results)} ({note})")
        if better:
            self.best, self.best_step = value, step
        s.barrier()
        return results
