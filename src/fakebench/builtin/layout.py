"""The built-in benchmark's fixed names: files and folders it writes, manifest columns,
splits, generator roles and the views cut from each source crop (see
:mod:`fakebench.builtin.build` for what they mean)."""

from __future__ import annotations

import os
from typing import Union

PathLike = Union[str, "os.PathLike[str]"]

#: Bump when the build procedure changes: invalidates every cached build.
BUILTIN_VERSION = 1
MANIFEST = "manifest.csv"
SETTINGS = "settings.json"
IMAGES_DIR = "images"
MANIFEST_COLUMNS = ("path", "label", "generator", "split", "source")
SPLITS = ("train", "val", "test")
#: Generator families present in every split.
SEEN_GENERATORS = ("tconv", "nearest", "pixelshuffle")
#: Generator families held out of train and val (the TAE, when given, is held out too).
HELDOUT_GENERATORS = ("bilinear",)
#: Patches cut from each source crop: four quadrants, the centre, the crop downscaled 2x.
VIEWS = ("q00", "q01", "q10", "q11", "ctr", "half")
#: Reflect padding given to generators around each crop (pixels).
CONTEXT = 8
