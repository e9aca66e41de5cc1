"""``cgx sweep``: a recipe over a grid of overrides and seeds, each point a normal run folder, then one
table of every configuration's scores over its seeds (``grid``: the points and their names; ``folder``:
the sweep folder; ``runner``: running them here; ``slurm``: as a job array; ``table`` and ``page``: the
results)."""
