"""Datasets as lists of :class:`Sample`, degradations, training transforms and loaders.

- :mod:`.loaders`: folder layouts, CNNDetection, CSV manifests; splitting and selection.
- :mod:`.degrade`: JPEG / resize / blur / crop, one implementation for augmentation and attacks.
- :mod:`.transforms`: the CNNSpot training recipe and the evaluation transform.
- :mod:`.dataset`: a torch ``Dataset`` that skips bad files, and a streaming batch iterator.
"""

from __future__ import annotations

from .loaders import (
    FAKE,
    MANIFEST_NAME,
    REAL,
    SPLITS,
    Sample,
    from_cnndetection,
    from_folders,
    from_manifest,
    list_image_files,
    load_dataset,
    select,
    select_split,
    split_samples,
)

__all__ = [
    "FAKE", "MANIFEST_NAME", "REAL", "SPLITS", "Sample", "from_cnndetection", "from_folders", "from_manifest",
    "list_image_files", "load_dataset", "select", "select_split", "split_samples",
]
