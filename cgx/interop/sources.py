"""Where imported weights come from: an authors' checkpoint folder or single authors' network files
(CycleGAN's four, or pix2pix's ``latest_net_G.pth`` and ``latest_net_D.pth``).

Naming: the authors' ``G_A`` maps A -> B (cgx's G), ``G_B`` maps B -> A (cgx's F). Their ``D_A``
judges domain B (it sees G_A's output) and ``D_B`` domain A, so their ``D_A`` is cgx's ``D_B``
and their ``D_B`` is cgx's ``D_A``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CheckpointError
from . import authors

AUTHORS_TO_CGX = {"G_A": "G", "G_B": "F", "D_A": "D_B", "D_B": "D_A"}
"""The authors' network names -> cgx's."""
CGX_TO_AUTHORS = {v: k for k, v in AUTHORS_TO_CGX.items()}
PIX2PIX_NAMES = {"G": "G", "D": "D"}
"""The authors' pix2pix files (``latest_net_G.pth``: G, ``latest_net_D.pth``: the conditional D) -> cgx's
pix2pix networks (``Pix2PixGenerator.G``, ``ConditionalDiscriminator.D``), the same names."""
_NAMED = re.compile(r"^(?P<prefix>.*)net_(?P<name>G_A|G_B|D_A|D_B|G|D)\.pth$")


@dataclass
class Imported:
    """Networks read from authors' files, by cgx's names (G, F, D_A, D_B); absent ones are missing."""

    nets: dict[str, authors.Network] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    method: str = "cyclegan"
    """``pix2pix`` when the files are the authors' pix2pix networks (``*net_G.pth``, ``*net_D.pth``)."""

    def add(self, name: str, net: authors.Network, path: Path, method: str = "cyclegan") -> None:
        if self.nets and method != self.method:
            raise CheckpointError(f"{path}: a {method} network file among {self.method} ones "
                                  f"({', '.join(str(f) for f in self.files.values())}); give one model's files")
        self.method = method
        if name in self.nets:
            raise CheckpointError(f"{path}: {name} was already read from {self.files[name]}; give each network once")
        self.nets[name], self.files[name] = net, path

    def section(self, role: str):
        """The recipe section of the generators (role "G") or the discriminators ("D"), after checking
        that both networks of the pair have the same architecture (cgx builds both from one section)."""
        names = ("G", "F") if role == "G" else ("D_A", "D_B", "D")
        found = [(n, self.nets[n]) for n in names if n in self.nets]
        if not found:
            return None
        (n0, first), *rest = found
        for n, net in rest:
            if _without_channels(net.section) != _without_channels(first.section):
                raise CheckpointError(
                    f"{self.files[n]}: {n} is {net.section.to_dict()} but {n0} ({self.files[n0]}) is "
                    f"{first.section.to_dict()}; cgx builds both networks of a pair from one recipe section")
        return first.section


    def channels(self) -> dict[str, int]:
        """Domain A's and B's channel counts (the authors' input_nc, output_nc) as the networks read them:
        G (their G_A) reads A and writes B, F (G_B) the reverse, D_A (their D_B) judges A, D_B judges B."""
        found: dict[str, int] = {}
        reads = {"G": ("A", "B"), "F": ("B", "A"), "D_A": ("A", None), "D_B": ("B", None),
                 "D": (None, None)}  # pix2pix's D sees A and B concatenated
        for name, net in self.nets.items():
            src, dst = reads[name]
            for domain, key in ((src, "in_channels"), (dst, "out_channels")):
                if domain is None or key not in net.section.args:
                    continue
                value = int(net.section.args[key])
                if found.setdefault(domain, value) != value:
                    raise CheckpointError(f"{self.files[name]}: {name} has {key}={value}, but another network "
                                          f"gives domain {domain} {found[domain]} channels")
        return found

    def data_channels(self) -> dict:
        """The recipe's ``data.a`` / ``data.b`` channels the networks imply (8-bit: the authors' images)."""
        return {d.lower(): {"channels": n} for d, n in self.channels().items()}

    def method_settings(self) -> dict:
        """``method.identity_weight=0`` when A and B have different channels (the authors require it too)."""
        c = self.channels()
        return {"identity_weight": 0.0} if c.get("A", 3) != c.get("B", 3) else {}

    def generator_section(self):
        """The generators' section with the channels of G (A -> B), whichever file it was read from."""
        section = self.section("G")
        if section is None:
            return None
        c = self.channels()
        args = {k: v for k, v in section.args.items() if k not in ("in_channels", "out_channels")}
        return type(section)(section.name, {"in_channels": c.get("A", 3), "out_channels": c.get("B", 3), **args})

    def discriminator_section(self):
        """The discriminators' section; its in_channels only when both domains have the same count."""
        section = self.section("D")
        if section is None:
            return None
        c = self.channels()
        args = dict(section.args)
        if self.method == "pix2pix":  # the method sets a conditional D's in_channels (input + output)
            args.pop("in_channels", None)
        elif c.get("A", 3) != c.get("B", 3):
            args.pop("in_channels", None)
        else:
            args["in_channels"] = c.get("A", 3)
        return type(section)(section.name, args)


def _without_channels(section):
    return (section.name, {k: v for k, v in section.args.items() if k not in ("in_channels", "out_channels")})


def is_authors_folder(path: Path) -> bool:
    return path.is_dir() and any(_NAMED.match(p.name) for p in path.iterdir())


def read_folder(folder: str | Path, epoch: str = "latest") -> Imported:
    """``{epoch}_net_G_A.pth``, ``_G_B``, ``_D_A``, ``_D_B`` from an authors' checkpoint folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"no such folder: {folder}")
    out = Imported()
    for method, names in (("cyclegan", AUTHORS_TO_CGX), ("pix2pix", PIX2PIX_NAMES)):
        for theirs, ours in names.items():
            path = folder / f"{epoch}_net_{theirs}.pth"
            if path.is_file():
                out.add(ours, _read(theirs, path), path, method)
    if not out.nets:
        found = sorted(p.name for p in folder.glob("*_net_*.pth"))[:6]
        raise CheckpointError(f"{folder}: no {epoch}_net_G_A.pth, {epoch}_net_G_B.pth, {epoch}_net_D_A.pth or "
                              f"{epoch}_net_D_B.pth (CycleGAN), nor {epoch}_net_G.pth or {epoch}_net_D.pth (pix2pix)"
                              + (f" (found: {', '.join(found)})" if found else ""))
    return out


def _read(theirs: str, path: Path) -> authors.Network:
    return authors.read_generator(path) if theirs.startswith("G") else authors.read_discriminator(path)


def read_paths(paths: list[str | Path], epoch: str = "latest") -> Imported:
    """One authors' checkpoint folder, or network files. A file named ``*net_G_A.pth`` (``G_B``, ``D_A``,
    ``D_B``) goes where its name says; any other generator file is G (A -> B) if it comes first and
    F (B -> A) if second (the published pretrained ``latest_net_G.pth`` models are A -> B)."""
    paths = [Path(p) for p in paths]
    if len(paths) == 1 and paths[0].is_dir():
        return read_folder(paths[0], epoch)
    out = Imported()
    unnamed = iter(("G", "F"))
    for p in paths:
        if p.is_dir():
            raise CheckpointError(f"{p}: give one authors' checkpoint folder, or network files, not both")
        m = _NAMED.match(p.name)
        if m and m.group("name") in PIX2PIX_NAMES:  # latest_net_G.pth / latest_net_D.pth: pix2pix's
            out.add(PIX2PIX_NAMES[m.group("name")], _read(m.group("name"), p), p, "pix2pix")
            continue
        if m:
            theirs = m.group("name")
            out.add(AUTHORS_TO_CGX[theirs], _read(theirs, p), p)
            continue
        name = next(unnamed, None)
        if name is None:
            raise CheckpointError(f"{p}: a third unnamed generator file; name them *_net_G_A.pth / *_net_G_B.pth, "
                                  f"or give at most two (A->B first, then B->A)")
        out.add(name, authors.read_generator(p), p)
    return out
