"""``fakebench forensics lighting|perspective``: analyse one image, print the verdict, write a
figure (PNG) and the result (JSON) into ``--out``.

Exit codes: 0 when the analysis ran (whatever the verdict; it is in the JSON and on stdout),
2 for a bad annotation file, image or argument (one line on stderr, from :func:`fakebench.cli.main`).
Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from ..errors import FakebenchError


def _safe_stem(path: str) -> str:
    """File-name stem restricted to [A-Za-z0-9._-] so outputs stay inside --out."""
    stem = Path(path).stem or "image"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
    stem = re.sub(r"\.{2,}", ".", stem).strip("._") or "image"
    return stem[:100]


def _outputs(args: argparse.Namespace, kind: str) -> tuple[Path, Path]:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise FakebenchError(f"{out}: --out exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{_safe_stem(args.image)}_{kind}"
    return out / f"{stem}.json", out / f"{stem}.png"


def _write(json_path: Path, png_path: Path, result: dict[str, Any], args: argparse.Namespace) -> None:
    result = dict(result)
    result["image"] = str(args.image)
    if getattr(args, "annotations", None):
        result["annotations"] = str(args.annotations)
    result["figure"] = png_path.name
    json_path.write_text(json.dumps(result, indent=2, allow_nan=False))
    print(f"wrote {json_path} and {png_path}")


def _load(path: str) -> Any:
    from ..io import load_image

    return load_image(path)


def cmd_lighting(args: argparse.Namespace) -> int:
    """Cast/attached shadow consistency of IMAGE from an annotation file."""
    from ..forensics.annotations import load_lighting
    from ..forensics.figures import lighting_figure
    from ..forensics.lighting import analyze_lighting

    img = _load(args.image)
    ann = load_lighting(args.annotations, image_size=(img.shape[1], img.shape[0]))
    res = analyze_lighting(ann, max_removals=args.max_removals)
    jp, pp = _outputs(args, "lighting")
    print(res.verdict())
    lighting_figure(res, img, pp)
    _write(jp, pp, res.to_dict(), args)
    return 0


def cmd_perspective(args: argparse.Namespace) -> int:
    """Vanishing-point consistency of IMAGE from annotations or automatic line detection."""
    from ..forensics.figures import perspective_figure

    img = _load(args.image)
    if args.auto:
        from ..forensics.auto import AutoConfig, analyze_perspective_auto

        extra = {k: v for k, v in (("min_long_segments", args.min_long_segments),
                                   ("vp_min_long", args.vp_min_long)) if v is not None}
        res = analyze_perspective_auto(img, AutoConfig(seed=args.seed, **extra))
    else:
        from ..forensics.annotations import load_perspective
        from ..forensics.perspective import analyze_perspective

        res = analyze_perspective(load_perspective(args.annotations, image_size=(img.shape[1], img.shape[0])))
    jp, pp = _outputs(args, "perspective")
    print(res.verdict())
    perspective_figure(res, img, pp)
    _write(jp, pp, res.to_dict(), args)
    return 0


def add_parser(subparsers: Any) -> None:
    """Add ``forensics {lighting,perspective}`` to an argparse sub-parsers object."""
    p = subparsers.add_parser("forensics", help="geometric forensics: lighting and perspective consistency (Farid 2022)",
                              description="Physics-based consistency tests of one image (Farid 2022).")
    sub = p.add_subparsers(dest="forensics_cmd", metavar="{lighting,perspective}")
    sub.required = True

    s = sub.add_parser("lighting", help="do the annotated cast/attached shadows agree on one light?")
    s.add_argument("image", help="image file")
    s.add_argument("--annotations", required=True, help="lighting annotation JSON (see examples/forensics)")
    s.add_argument("--out", required=True, help="folder for <image>_lighting.json and .png")
    s.add_argument("--max-removals", type=int, default=3, help="largest removal set of the exact search (default 3)")
    s.set_defaults(func=cmd_lighting)

    s = sub.add_parser("perspective", help="do the line segments agree on vanishing points and one camera?")
    s.add_argument("image", help="image file")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--annotations", help="perspective annotation JSON (see examples/forensics)")
    g.add_argument("--auto", action="store_true", help="detect line segments and vanishing points automatically")
    s.add_argument("--out", required=True, help="folder for <image>_perspective.json and .png")
    s.add_argument("--seed", type=int, default=0, help="seed of the automatic mode (Hough, RANSAC)")
    s.add_argument("--min-long-segments", type=int, default=None,
                   help="--auto: abstain with fewer long segments (>= 15%% of the shorter side; default 8, 0: never)")
    s.add_argument("--vp-min-long", type=int, default=None,
                   help="--auto: long segments a vanishing point needs to count as well supported; abstain "
                        "without two (default 4, 0 with --min-long-segments 0: never abstain)")
    s.set_defaults(func=cmd_perspective)
