"""Train from a recipe (any method: CycleGAN, CUT, FastCUT, pix2pix).

    python -m cgx.run RECIPE.yaml [key=value ...]                       # one process
    torchrun --nproc_per_node=N -m cgx.run RECIPE.yaml [key=value ...]  # N processes (DDP)

RECIPE is a recipe file, or the name of a built-in recipe (cgx recipes lists them; a file of that
name wins): python -m cgx.run demo data.source=folder data.root=data/demo.

Overrides use dotted recipe keys: train.steps=200 optim.lr=1e-4 model.generator.n_blocks=6.
A run resumes from the newest good checkpoint in train.run_dir (train.start_over=true: start at 0,
moving the folder's previous run aside). train.run_dir must be a new or empty folder, or one of cgx's
runs (never / or your home folder, never inside the training images); no part of it may be a symbolic
link. RUN/config.yaml (written by cgx) given as the recipe trains on in RUN and imports none of the
plugin modules it names unless they are given again with --plugins. SIGUSR1, SIGTERM or a file RUN_DIR/STOP: checkpoint at the
next step boundary and stop.

exit codes:
  0   trained to the last step
  2   bad recipe, data, plugin, checkpoint or set-up (one line on stderr says what)
  3   training diverged (NaN/inf); nothing non-finite was written
  75  stopped on request with a checkpoint: run the same command again to resume
      (under torchrun, whose exit code is 1 for any worker exit but 0, RUN_DIR/STOPPED says so)
"""
from __future__ import annotations

import argparse
import os
import sys

from .cli import add_train_plugins_option
from .config import load_config
from .distributed import world_info_from_env
from .distributed.failure import end_rank
from .errors import CgxError, NonFiniteLossError, user_message
from .recipe_record import apply_command_line
from .run_dir import RunDir
from .train.stop import stays_stopped
from .safe_text import shown

USER_ERRORS = (CgxError,)
EXIT_USER_ERROR = 2
EXIT_DIVERGED = 3
EXIT_STOPPED = 75  # EX_TEMPFAIL: try again later (resume)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cgx.run",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("recipe", help="recipe YAML file, or a built-in recipe's name (cgx recipes lists them)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides, e.g. train.steps=200")
    add_train_plugins_option(p)
    return p



def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from .train.trainer import Trainer

    world = world_info_from_env()
    main_rank = world.is_main
    trainer = None
    try:
        cfg = apply_command_line(load_config(args.recipe, args.overrides), args.recipe, args.plugins,
                                 args.overrides, say=main_rank)
        marker = stays_stopped(RunDir(cfg.train.run_dir))
        if marker is not None:
            # torchrun restarted workers that had been asked to stop: stay stopped.
            if main_rank:
                print(f"cgx: {marker.read_text().strip()} (torchrun restart {os.environ['TORCHELASTIC_RESTART_COUNT']})",
                      file=sys.stderr)
            return EXIT_STOPPED
        trainer = Trainer(cfg)
        latest = trainer.fit()
        if trainer.stopped_early:
            return EXIT_STOPPED
        if main_rank:
            run, loggers = RunDir(trainer.run_dir), [b.name for b in cfg.logging.backends]
            print(f"cgx: trained {trainer.step} steps\n  run folder:  {shown(run.root)}\n  checkpoint:  {latest}"
                  + (f"\n  tensorboard: tensorboard --logdir {run.tensorboard}" if "tensorboard" in loggers else "")
                  + (f"\n  jsonl:       {run.jsonl}" if "jsonl" in loggers else ""))
        return 0
    except BaseException as e:
        if trainer is not None and world.distributed:
            # No collective on the way out (cgx.distributed.failure): this rank says why and exits now.
            failed, trainer = trainer, None
            end_rank(e, world.rank, main_rank, exit_code(e), failed._release_lock)
        message = user_message(e) if isinstance(e, Exception) else None
        if message is None:
            raise
        if main_rank:
            print(f"cgx: error: {shown(message)}", file=sys.stderr)
        return exit_code(e)
    finally:
        if trainer is not None:
            trainer.close()


def exit_code(error: BaseException) -> int:
    if isinstance(error, NonFiniteLossError):
        return EXIT_DIVERGED
    if isinstance(error, USER_ERRORS) or user_message(error) is not None:
        return EXIT_USER_ERROR
    return 130 if isinstance(error, KeyboardInterrupt) else 1


if __name__ == "__main__":
    sys.exit(main())
