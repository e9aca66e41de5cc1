"""``cgx eval``: score a run's (or a checkpoint's) generators on test images, in one process or
under torchrun (every rank takes its share of the images); rank 0 writes the JSON record and the
results page beside it (``cgx.eval.page``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..distributed import DDPStrategy, world_info_from_env
from ..errors import SetupError, UsageError
from ..infer import load_generators
from ..run_dir import RunDir, page_of
from .evaluate import directions_of, evaluate, report, summary, table, translated_in, write_json
from .image_set import ImageSet
from .page import Examples, recipe_text, write_page
from .inception import InceptionFeatures, resolve_weights
from ..safe_text import shown


def run_eval(checkpoint: str | Path, a: str | None, b: str | None, *, direction: str = "both",
             inception: str | None = None, batch_size: int = 16, max_images: int | None = None,
             output: str | None = None, progress: bool = True, command: str = "cgx eval", plugins: Sequence[str] = (),
             bands: list[int] | None = None, pairs: str | None = None,
             weights: str = "auto", precision: str = "fp32", page: bool = True,
             overwrite: bool = False, labels: str | None = None, labels_b: str | None = None,
             segmenter: str | None = None) -> tuple[dict, Path | None]:
    """Scores per direction (see ``cgx.eval.evaluate``; with ``pairs``, a folder of aligned test pairs,
    ``cgx.eval.paired``) and the JSON file written (rank 0; else None). ``precision``: of the scored
    translations (fp32 by default: the same scores on any hardware); ``page``: write the results page
    (``cgx.eval.page``) beside the record; ``overwrite``: replace an ``output`` that exists (and its
    page, one cgx wrote), ``check_output``. ``labels`` / ``labels_b``: label maps of the A / B test images, for the
    FCN score of AtoB / BtoA (``cgx.eval.fcn_score``) with ``segmenter`` (``cgx.eval.segmenters``)."""
    if pairs is None and (a is None or b is None):
        raise UsageError("cgx eval needs --a and --b (test images of each domain), or --pairs (aligned A | B test pairs)")
    if pairs is not None and (a is not None or b is not None):
        raise UsageError("--pairs scores against ground truth and replaces --a/--b; give one or the other")
    if (labels or labels_b) and pairs is not None:
        raise UsageError("--labels scores the translations of --a (--labels-b: of --b) by a segmenter; it cannot be "
                         "used with --pairs")
    if (labels or labels_b) and not segmenter:
        raise UsageError("--labels needs --segmenter (what labels the translated images: a TorchScript or ONNX file, "
                         "palette:COLOURS, or run)")
    if segmenter and not (labels or labels_b):
        raise UsageError("--segmenter labels the translations for the FCN score: give --labels DIR (the label maps "
                         "of the --a images) or --labels-b DIR")
    strategy = DDPStrategy(world_info_from_env())
    try:
        gens = load_generators(checkpoint, strategy.device, plugins=plugins, weights=weights)
        ckpt = gens.checkpoint  # checked against its manifest once, by the loader
        check_output(output, ckpt, gens.step, page=page, overwrite=overwrite,
                     inputs=[p for p in (a, b, pairs) if p is not None])
        inception_weights = resolve_weights(inception, "--inception")
        features = InceptionFeatures(inception_weights.path).to(strategy.device)
        data = gens.config.data
        bands = bands if bands is not None else gens.config.eval.bands
        check_bands(bands, data)
        check_precision(precision, strategy.device)
        translated = translated_in(precision, strategy.device)
        examples = Examples(bands=bands, paired=pairs is not None) if page and strategy.is_main else None
        if pairs is not None:
            from .paired import PairSet, evaluate_paired, report_paired, table_paired

            pair_set = PairSet(pairs, "--pairs", max_images, data.a, data.b)
            results = evaluate_paired({"AtoB": gens.G, "BtoA": gens.F}, pair_set, directions_of(direction), features,
                                      strategy, batch_size=batch_size, progress=progress, bands=bands,
                                      examples=examples, precision=precision)
            record = None
            if strategy.is_main:
                record = report_paired(results, step=gens.step, checkpoint=str(ckpt), pairs=pair_set,
                                       weights=inception_weights, world_size=strategy.world_size, command=command,
                                       bands=bands, translated=translated)
                record["generator_weights"] = gens.weights
            return results, _write(record, output, ckpt, gens.step, table_paired(results), examples, gens.config)
        set_a, set_b = ImageSet(a, "--a", max_images, data.a), ImageSet(b, "--b", max_images, data.b)
        learned = tuple(d for d, net in (("AtoB", gens.G), ("BtoA", gens.F)) if net is not None)
        if direction != "both":
            gens.net(direction)  # a direction the method does not learn: CheckpointError naming it
        elif len(learned) < 2 and strategy.is_main:
            print(f"cgx: eval: method {shown(gens.config.method.name)} learns {', '.join(learned)} only: scoring that")
        scored = directions_of(direction, learned)
        fcn = fcn_scorers({"AtoB": labels, "BtoA": labels_b}, segmenter, scored, set_a, set_b, data, strategy.device,
                          gens, examples)
        results = evaluate(gens.G, gens.F, set_a, set_b, scored, features, strategy,
                           batch_size=batch_size, progress=progress, bands=bands, examples=examples, precision=precision,
                           fcn=fcn)
        record = None
        if strategy.is_main:
            record = report(results, step=gens.step, checkpoint=str(ckpt), set_a=set_a, set_b=set_b,
                            weights=inception_weights, world_size=strategy.world_size, command=command, bands=bands,
                            translated=translated)
            record["generator_weights"] = gens.weights  # raw, or the run's moving average (train.ema)
        return results, _write(record, output, ckpt, gens.step, table(results), examples, gens.config)
    finally:
        strategy.close()


def fcn_scorers(labels: dict, segmenter: str | None, scored: tuple, set_a, set_b, data, device, context=None,
                examples=None, key: str = "--labels") -> dict:
    """The FCN scorers (``cgx.eval.fcn_score.build_scorers``) of the directions given label maps, each checked
    to be scored; ``examples`` (the results page) learns the colours to overlay each direction's classes in."""
    from .fcn_score import build_scorers, overlay_palette

    for d, folder in labels.items():
        if folder and d not in scored:
            name = key if d == "AtoB" else (f"{key}_b" if key.startswith("eval.") else "--labels-b")
            raise UsageError(f"{name} gives the label maps of the {d[0]} test images, for the FCN score of {d}, which "
                             f"is not scored here (directions scored: {', '.join(scored)})")
    fcn = build_scorers(labels, segmenter, {"AtoB": set_a, "BtoA": set_b},
                        {"AtoB": data.a.labels, "BtoA": data.b.labels}, device, key=key, context=context)
    if examples is not None:
        examples.palettes = {d: overlay_palette(s) for d, s in fcn.items()}
    return fcn


def _write(record: dict | None, output: str | None, ckpt: Path, step: int, scores: str,
           examples: Examples | None, config) -> Path | None:
    """Rank 0 (``record`` given): write it to ``output`` or the run's eval record, and with ``examples``
    the results page beside it (``page_of``); others: None."""
    if record is None:
        return None
    target = Path(output) if output else RunDir.of_checkpoint(ckpt).eval_record(step)
    page = page_of(target)
    if examples is not None:
        record["page"] = os.path.relpath(page, target.parent)  # beside the record: step_N/index.html
    try:
        written = write_json(record, target)
    except OSError as e:  # the scores took long to compute: show them before failing
        print(scores)
        raise SetupError(f"cannot write the scores to {target} ({e.strerror}); they are printed above; "
                         f"--output names another file") from None
    if examples is not None:
        try:
            write_page(page, record, examples, recipe_text(config), record_file=target)
        except OSError as e:
            print(scores)
            raise SetupError(f"cannot write the results page to {page} ({e.strerror}); the scores are written "
                             f"to {target}") from None
    return written


def check_output(output: str | None, ckpt: Path, step: int, *, page: bool, overwrite: bool,
                 inputs: Sequence[str] = ()) -> None:
    """Before anything is evaluated: the record (``output``, else the run's ``eval/step_N.json``) and its
    page folder may be written. Never through a link, never onto or into a checkpoint or an input
    folder, never over a folder (a page folder is replaced only where it holds a page cgx wrote);
    an existing ``output`` only with ``--overwrite`` (the run's own record of this step is cgx's:
    an evaluation again replaces it)."""
    from ..outputs import check_targets
    from ..run_dir import refuse_link
    from ..train.checkpoint import SHARED_FILE
    from .page import is_page_folder

    if output is None:
        run = RunDir.of_checkpoint(ckpt)
        refuse_link(run.eval)
        target, overwrite = run.eval_record(step), True
    else:
        target = Path(output)
    folder = page_of(target).parent
    for path in ([target, folder] if page else [target]):
        for holder in (path.parent, path.parent.parent):
            if (holder / SHARED_FILE).exists():
                raise UsageError(f"{path} is inside the checkpoint folder {holder}: cgx never writes into a "
                                 f"checkpoint; name another --output")
    check_targets([target], input_folders=[ckpt, *[p for p in inputs if Path(p).is_dir()]], overwrite=overwrite)
    if not page or not (folder.exists() or folder.is_symlink()):
        return
    refuse_link(folder)
    if (folder / SHARED_FILE).exists():
        raise UsageError(f"the results page of {target} would replace the checkpoint folder {folder}; "
                         f"name another --output (or --no-page)")
    if not is_page_folder(folder):
        raise UsageError(f"the results page of {target} goes into {folder}, which exists and is not a results "
                         f"page cgx wrote: name another --output (the page goes beside it, NAME/index.html), "
                         f"or --no-page")
    if not overwrite:
        raise UsageError(f"the results page {folder} exists already; pass --overwrite to replace it "
                         f"(and {target}), or choose another --output")


def check_precision(precision: str, device) -> None:
    """UsageError naming --precision for one this device cannot compute in (fp16 on a CPU)."""
    from ..precision import resolve

    if resolve(precision, device) == "fp16" and device.type != "cuda":
        raise UsageError(f"--precision fp16 needs a CUDA device; on {device.type} use fp32, bf16 or auto")


def check_bands(bands, data) -> None:
    """UsageError naming --bands when they are not three distinct bands of every N-channel domain."""
    from ..errors import UsageError

    if bands is None:
        return
    if len(bands) != 3 or len(set(bands)) != 3:
        raise UsageError(f"--bands must be three different band numbers (0-based, shown as R, G, B), got {bands}")
    for d in ("a", "b"):
        n = getattr(data, d).channels
        if n not in (1, 3) and not all(0 <= i < n for i in bands):
            raise UsageError(f"--bands {bands}: domain {d.upper()} has {n} channels, so bands must be 0..{n - 1}")


def print_results(results: dict, written: Path | None, checkpoint: str) -> None:
    paired = any("PSNR" in r for r in results.values())  # scored against ground truth (cgx.eval.paired)
    if paired:
        from .paired import summary_paired, table_paired

        print(table_paired(results))
    else:
        print(table(results))
    print(f"cgx: scores written to {written}")
    page = page_of(written) if written is not None else None
    if page is not None and page.is_file():
        print(f"cgx: results page written to {page}")
    print(f"cgx: eval {checkpoint}: {summary_paired(results) if paired else summary(results)}")
