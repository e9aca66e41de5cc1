"""Train a CycleGAN from a recipe.

    python -m cgx.run RECIPE.yaml [key=value ...]                       # one process
    torchrun --nproc_per_node=N -m cgx.run RECIPE.yaml [key=value ...]  # N processes (DDP)

Overrides use dotted recipe keys: train.steps=200 optim.lr=1e-4 model.generator.n_blocks=6.
A run resumes from the newest checkpoint in train.run_dir unless train.resume=false.
"""
from __future__ import annotations

import argparse
import sys

from .config import load_config
from .distributed import world_info_from_env
from .errors import CgxError, NonFiniteLossError

USER_ERRORS = (CgxError,)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cgx.run",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("recipe", help="recipe YAML file (see recipes/)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides, e.g. train.steps=200")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from .train.trainer import Trainer

    main_rank = world_info_from_env().is_main
    trainer = None
    try:
        cfg = load_config(args.recipe, args.overrides)
        trainer = Trainer(cfg)
        latest = trainer.fit()
        if main_rank and not trainer.stopped_early:
            run = trainer.run_dir
            print(f"cgx: trained {trainer.step} steps\n"
                  f"  run folder:  {run}\n  checkpoint:  {latest}\n  tensorboard: tensorboard --logdir {run / 'tb'}")
        return 0
    except NonFiniteLossError as e:
        if main_rank:
            print(f"cgx: error: {e}", file=sys.stderr)
        return 3
    except USER_ERRORS as e:
        if main_rank:
            print(f"cgx: error: {e}", file=sys.stderr)
        return 2
    finally:
        if trainer is not None:
            trainer.close()


if __name__ == "__main__":
    sys.exit(main())
