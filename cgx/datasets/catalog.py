"""The data sets the CycleGAN and pix2pix authors publish, and where their archives are.

The lists are those of the authors' download scripts (junyanz/pytorch-CycleGAN-and-pix2pix,
``datasets/download_cyclegan_dataset.sh`` and ``datasets/download_pix2pix_dataset.sh``):
``BASE/cyclegan/datasets/NAME.zip`` (unpaired, ``trainA/ trainB/ testA/ testB/``) and
``BASE/pix2pix/datasets/NAME.tar.gz`` (aligned A | B pairs, ``train/ val/ test/``), BASE by default
the authors' server. A mirror keeps the same two folders.

Every data set has a full name, ``COLLECTION/NAME`` (``cyclegan/horse2zebra``, ``pix2pix/facades``);
the bare name works where only one collection has it. facades and maps are in both (the unpaired zip
and the aligned tar.gz hold different files), so for them the collection must be named.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass

from ..errors import UsageError

DEFAULT_URL = "http://efrosgans.eecs.berkeley.edu"
"""The authors' server, as their scripts name it."""
URL_ENV = "CGX_DATASETS_URL"
"""Environment variable for another base URL (a mirror); ``--url`` wins over it."""

COLLECTIONS = {"cyclegan": ".zip", "pix2pix": ".tar.gz"}
"""Collection -> archive suffix; the archive is BASE/COLLECTION/datasets/NAME + suffix."""

LAYOUTS = {"cyclegan": "unpaired: trainA/ trainB/ testA/ testB/", "pix2pix": "aligned pairs: train/ val/ test/"}

NO_CHECKSUM = "no checksum known"


@dataclass(frozen=True)
class DataSet:
    collection: str
    name: str
    about: str
    unavailable: str | None = None
    """Why the authors do not distribute it (then fetch refuses, saying so)."""
    sha256: str | None = None
    """The archive's SHA-256 where one is known and verified; none of the authors' is yet."""

    @property
    def full_name(self) -> str:
        return f"{self.collection}/{self.name}"

    @property
    def paired(self) -> bool:
        return self.collection == "pix2pix"

    @property
    def archive_name(self) -> str:
        return self.name + COLLECTIONS[self.collection]

    def url(self, base: str) -> str:
        return f"{base.rstrip('/')}/{self.collection}/datasets/{self.archive_name}"


_CITYSCAPES = ("not distributed by the authors (licence): download gtFine_trainvaltest.zip and "
               "leftImg8bit_trainvaltest.zip from https://cityscapes-dataset.com and prepare them with the "
               "authors' datasets/prepare_cityscapes_dataset.py")

CATALOG: tuple[DataSet, ...] = (
    DataSet("cyclegan", "apple2orange", "apples <-> oranges (ImageNet)"),
    DataSet("cyclegan", "summer2winter_yosemite", "Yosemite in summer <-> in winter (Flickr)"),
    DataSet("cyclegan", "horse2zebra", "horses <-> zebras (ImageNet)"),
    DataSet("cyclegan", "monet2photo", "Monet paintings <-> photos"),
    DataSet("cyclegan", "cezanne2photo", "Cezanne paintings <-> photos"),
    DataSet("cyclegan", "ukiyoe2photo", "Ukiyo-e prints <-> photos"),
    DataSet("cyclegan", "vangogh2photo", "Van Gogh paintings <-> photos"),
    DataSet("cyclegan", "maps", "Google Maps aerial photos <-> maps, unpaired"),
    DataSet("cyclegan", "cityscapes", "Cityscapes labels <-> photos", unavailable=_CITYSCAPES),
    DataSet("cyclegan", "facades", "CMP facade labels <-> photos, unpaired"),
    DataSet("cyclegan", "iphone2dslr_flower", "iPhone <-> DSLR flower photos (shallow depth of field)"),
    DataSet("cyclegan", "ae_photos", "listed by the authors' script (contents as they pack it)"),
    DataSet("cyclegan", "grumpifycat", "cats <-> Grumpy Cat"),
    DataSet("cyclegan", "mini", "tiny set for the authors' tests"),
    DataSet("cyclegan", "mini_pix2pix", "tiny pix2pix set for the authors' tests"),
    DataSet("cyclegan", "mini_colorization", "tiny colorization set for the authors' tests"),
    DataSet("pix2pix", "cityscapes", "Cityscapes labels | photos", unavailable=_CITYSCAPES),
    DataSet("pix2pix", "night2day", "night | day webcam photos"),
    DataSet("pix2pix", "edges2handbags", "edge maps | handbag photos"),
    DataSet("pix2pix", "edges2shoes", "edge maps | shoe photos"),
    DataSet("pix2pix", "facades", "CMP facade labels | photos"),
    DataSet("pix2pix", "maps", "aerial photos | Google Maps"),
)


def base_url_source(url: str | None = None) -> str:
    """Where the base URL comes from: ``--url``, ``$CGX_DATASETS_URL`` or the authors' server."""
    return "--url" if url else (f"${URL_ENV}" if os.environ.get(URL_ENV) else "the authors' server")


def base_url(url: str | None = None) -> str:
    """``--url`` if given, else $CGX_DATASETS_URL, else the authors' server; http(s) or file: only."""
    chosen = url or os.environ.get(URL_ENV) or DEFAULT_URL
    if not chosen.startswith(("http://", "https://", "file:")):
        raise UsageError(f"{base_url_source(url)} {chosen!r}: a base URL must start with http://, https:// or file:")
    return chosen.rstrip("/")


def typed_name(d: DataSet) -> str:
    """The shortest name that finds ``d``: the bare name where only one collection has it."""
    return d.name if sum(e.name == d.name for e in CATALOG) == 1 else d.full_name


def find(name: str) -> DataSet:
    """The data set called ``name`` (``horse2zebra``, ``pix2pix/facades``); a UsageError listing the names
    (and the closest one) if there is none, or naming both choices if the bare name is in both collections."""
    full = [d for d in CATALOG if d.full_name == name]
    bare = [d for d in CATALOG if d.name == name]
    found = full or bare
    if len(found) == 1 or (found and all(d.unavailable for d in found)):
        return found[0]
    if len(found) > 1:
        choices = " or ".join(f"{d.full_name} ({LAYOUTS[d.collection]})" for d in found)
        raise UsageError(f"data set {name!r} is published twice: {choices}; name one")
    names = [typed_name(d) for d in CATALOG if not d.unavailable]
    close = difflib.get_close_matches(name, names + [d.full_name for d in CATALOG], n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise UsageError(f"unknown data set {name!r}{hint}; known: {', '.join(names)} (cgx datasets list)")


def fetch_hint(root: str, paired: bool) -> str:
    """What puts a data set at ``root`` (a recipe's data.root that is missing): the fetch command for
    it where its folder is named as one of the authors' data sets, else the general one."""
    path = os.path.normpath(str(root))
    name, parent = os.path.basename(path), os.path.dirname(path)
    collection = "pix2pix" if paired else "cyclegan"
    matches = [d for d in CATALOG if d.collection == collection and d.name == name and not d.unavailable]
    if matches:
        to = "" if parent == "datasets" else f" --to {parent or '.'}"
        return f"cgx datasets fetch {typed_name(matches[0])}{to} downloads it"
    if name.startswith("demo"):
        return f"cgx demo-data{' --paired' if paired else ''} {path} writes the demo data there"
    return f"cgx datasets fetch NAME --to {parent or '.'} downloads one of the authors' data sets (cgx datasets list)"
