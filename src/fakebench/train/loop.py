"""Training loop shared by every trainable detector: seeded, validated, early-stopped.

``train_detector`` reads a dataset (any layout :func:`fakebench.data.load_dataset` accepts),
trains with the detector family's augmentation recipe (overridable), keeps the weights with the
best validation AUC, calibrates the decision threshold on the validation set (balanced
accuracy) and saves the detector as safetensors + JSON.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from .. import detectors, metrics
from ..data import Sample, load_dataset, select, split_samples
from ..data.pipeline import ImageDataset, collate_skip_bad, iter_batches
from ..data.transforms import TrainTransform
from ..errors import ConfigError, DataError
from ..io import load_safetensors
from ..progress import progress_bar
from .distributed import rank_batches, rank_device, world_size, wrap_ddp

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Hyper-parameters. ``None`` fields take the detector card's ``recipe`` value."""

    epochs: int = 10
    max_steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float = 0.0
    schedule: str = "constant"  # "constant" or "cosine" (decay to 5% of lr over epochs x steps)
    crop: int | None = None  # None: the family's recipe; 0: no crop (whole images)
    blur_prob: float | None = None
    jpeg_prob: float | None = None
    #: social-network sharing augmentation (resize + JPEG chain of a random platform among
    #: ``share_platforms``, quality drawn from its range): fakebench.data.sharing
    share_prob: float = 0.0
    share_platforms: Sequence[str] = ("facebook", "x", "telegram")
    share_assume_side: int | None = None  # patches of photos this large are resized as the photo would be
    flip: bool = True
    rot90: bool = False  # random multiple-of-90-degree rotation (Gragnaniello et al. 2021)
    patience: int = 3
    seed: int = 0
    val_fraction: float = 0.15
    holdout_generators: Sequence[str] = field(default_factory=tuple)
    eval_batch_size: int = 128
    progress: bool = True
    #: a fakebench checkpoint folder of the same architecture to start from (fine-tuning)
    init: str | None = None
    #: ``cpu`` or ``cuda`` (under torchrun: each rank's own GPU, ``cuda:LOCAL_RANK``)
    device: str = "cpu"
    #: the EVALUATION preprocessing, saved in the checkpoint: None scores whole images (the
    #: CNNDetection protocol); N sets the detector's ``crop`` option (centre crop of N inside
    #: ``forward``). Training-time validation, ``evaluate`` and ``attack`` all apply it.
    eval_crop: int | None = None
    #: exponential moving average of the weights (and batch-norm statistics), decay per step;
    #: 0 turns it off. Validation, epoch selection and the saved checkpoint use the averaged
    #: weights (Gowal et al. 2020 found weight averaging a robust-accuracy gain in adversarial
    #: training). About 0.99-0.999 for runs of a few thousand steps.
    ema: float = 0.0

    def resolved(self, recipe: dict[str, Any]) -> "TrainConfig":
        defaults = {"batch_size": 64, "lr": 1e-4, "crop": None, "blur_prob": 0.0, "jpeg_prob": 0.0}
        if isinstance(self.ema, bool) or not isinstance(self.ema, (int, float)) or not 0 <= self.ema < 1:
            raise ConfigError(f"ema: expected a decay in [0, 1), got {self.ema!r}")
        out = TrainConfig(**asdict(self))
        for k, v in defaults.items():
            if getattr(out, k) is None:
                setattr(out, k, recipe.get(k, v))
        if not out.crop:  # 0 means "train on whole images, no crop"
            out.crop = None
        return out


def sharing_augmentation(platforms: Sequence[str], assume_side: int | None = None) -> Any:
    """``f(img, rng)``: share an (H, W, 3) image through a random one of ``platforms``
    (:func:`fakebench.data.sharing.share_np`, quality jittered over the platform's range)."""
    from ..data.sharing import get_platform, share_np

    plats = [get_platform(p) for p in platforms]  # unknown names fail here, before training
    if not plats:
        raise ConfigError("share_platforms: expected at least one platform")
    extra = {"assume_side": int(assume_side)} if assume_side else {}

    def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return share_np(img, plats[int(rng.integers(len(plats)))], rng=rng, jitter=True, **extra)

    return augment


def _splits(samples: list[Sample], cfg: TrainConfig) -> tuple[list[Sample], list[Sample]]:
    if any(s.split for s in samples):
        train, val = select(samples, split="train"), select(samples, split="val")
        if train and val:
            return train, val
    parts = split_samples(samples, fractions=(1 - cfg.val_fraction, cfg.val_fraction, 0.0), seed=cfg.seed,
                          holdout_generators=tuple(cfg.holdout_generators), respect_existing=False)
    return parts["train"], parts["val"]


def _check_two_classes(samples: list[Sample], what: str) -> None:
    labels = {s.label for s in samples}
    if labels != {0, 1}:
        only = "real" if labels == {0} else "synthetic" if labels == {1} else "no"
        raise DataError(f"{what}: has only {only} images; training needs both real (label 0) and synthetic (label 1) images")


def score_samples(det: torch.nn.Module, samples: list[Sample], batch_size: int = 128,
                  transform: Any = None, attack: Any = None) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Logits of ``samples`` through the one image pipeline (:func:`iter_batches`, images of any
    size bucketed by size; bad files skipped). Without ``transform`` the detector sees the whole
    decoded image and applies its own preprocessing, exactly as ``evaluate`` and ``attack`` do.
    With ``attack`` (``attack(det, x, y) -> x_adv``) the scores are those of the attacked images.
    Returns (indices of the scored samples, labels, logits), in ``samples`` order."""
    det.eval()
    device = next(iter(det.parameters()), torch.zeros(0)).device
    idx, ys, ss = [], [], []
    for x, y, i, _bad in iter_batches(samples, batch_size, transform, bucket=True):
        if not len(x):
            continue
        x, y = x.to(device), y.to(device)
        if attack is not None:
            x = attack(det, x, y)
        with torch.no_grad():
            ss.append(det(x).float().cpu().numpy())
        ys.append(y.cpu().numpy())
        idx += i.tolist()
    if not ys:
        return [], np.zeros(0, dtype=int), np.zeros(0, dtype=np.float32)
    order = np.argsort(idx, kind="stable")
    return [idx[k] for k in order], np.concatenate(ys)[order], np.concatenate(ss)[order]


def predict_samples(det: torch.nn.Module, samples: list[Sample], batch_size: int = 128,
                    transform: Any = None, attack: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(labels, logits) of :func:`score_samples`."""
    _, y, s = score_samples(det, samples, batch_size, transform, attack)
    return y, s


def calibrate_on(det: torch.nn.Module, samples: list[Sample], batch_size: int = 128,
                 transform: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Score ``samples`` and, when both classes are present, set ``det.threshold`` to the logit
    maximising balanced accuracy on them. Returns (labels, logits)."""
    yv, sv = predict_samples(det, samples, batch_size, transform) if samples else (np.zeros(0), np.zeros(0))
    _calibrate(det, yv, sv)
    return yv, sv


def _calibrate(det: torch.nn.Module, y: np.ndarray, s: np.ndarray) -> None:
    if len(y) and len(set(y.tolist())) == 2:
        det.threshold = float(metrics.calibrate_threshold(y, s, method="balanced"))


#: ``objective(detector, x, y) -> scalar loss``: what one training step minimises. The default
#: is the binary cross-entropy of the clean logits; :mod:`fakebench.defenses` supplies
#: adversarial objectives (PGD-AT, TRADES, FGSM-RS) through the same hook.
Objective = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def bce_objective(det: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the logits (the plain training loss)."""
    return F.binary_cross_entropy_with_logits(det(x), y.float())


def train_detector(detector_name: str, data: str | Path | list[Sample], out: str | Path,
                   cfg: TrainConfig | None = None, objective: Objective | None = None,
                   **detector_options: Any) -> tuple["detectors.Detector", dict[str, Any]]:
    """Train ``detector_name`` on ``data`` and save it to ``out``. Returns (detector, history).

    Randomness (initial weights, in-model randomness such as dropout, shuffling, augmentation)
    depends on ``cfg.seed`` only; the global torch RNG is forked, so the caller's state is
    untouched. ``objective`` replaces the plain cross-entropy step (adversarial training).

    Under ``torchrun`` every rank runs this function: DistributedDataParallel (gloo on CPU,
    nccl on CUDA) with ``cfg.batch_size`` as the global batch (:mod:`fakebench.train.distributed`);
    rank 0 alone writes ``out``."""
    from .distributed import dist_env, init_process_group

    cfg = cfg or TrainConfig()
    rank, world, _ = dist_env()
    created = init_process_group("nccl" if cfg.device.startswith("cuda") else "gloo") if world > 1 else False
    try:
        return _train(detector_name, data, out, cfg, objective, rank, detector_options)
    finally:
        if created:
            import torch.distributed as dist

            dist.destroy_process_group()


def _train(detector_name: str, data: str | Path | list[Sample], out: str | Path, cfg: TrainConfig,
           objective: Objective | None, rank: int, detector_options: dict[str, Any]
           ) -> tuple[detectors.Detector, dict[str, Any]]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # the initial weights depend on the seed too
        if cfg.eval_crop:  # the evaluation preprocessing lives in the detector (and its checkpoint)
            detector_options = {**detector_options, "crop": int(cfg.eval_crop)}
        det = build_trainable(detector_name, **detector_options)
        if cfg.init:
            init_from(det, cfg.init)
        cfg = cfg.resolved(dict(det.card.recipe) if det.card is not None else {})
        samples = load_dataset(data) if not isinstance(data, list) else data
        src = str(data) if not isinstance(data, list) else "samples"
        _check_two_classes(samples, src)
        train, val = _splits(samples, cfg)
        _check_two_classes(train, f"{src} (train split)")
        torch.manual_seed(cfg.seed)
        history = fit(det, train, val, cfg, objective or bce_objective, name=detector_name)
    history["n_train"], history["n_val"] = len(train), len(val)
    det.meta = {"trained_on": src, "train_history": history["epochs"], "best_val_auc": history["best_val_auc"],
                "seed": cfg.seed, "validation": "the detector's own preprocessing on whole images (as evaluate)"}
    if rank == 0:
        outp = Path(out)
        det.save(outp)
        (outp / "train_log.json").write_text(json.dumps(history, indent=2, default=str))
    return det, history


def build_trainable(detector_name: str, **detector_options: Any) -> "detectors.Detector":
    """``detectors.create`` that refuses detectors gradient descent cannot train."""
    det = detectors.create(detector_name, **detector_options)
    if not det.differentiable:
        raise ConfigError(f"{detector_name}: not trainable by gradient descent ({det.non_differentiable_reason})")
    return det


def init_from(det: torch.nn.Module, checkpoint: str | Path) -> None:
    """Start from ``checkpoint``: a fakebench checkpoint folder of the same architecture (all
    weights, strict), or a FILE holding a torchvision-format ImageNet classifier state dict
    (detectors with ``load_imagenet``, e.g. cnnspot / res50nodown: backbone loaded, head
    replaced)."""
    from ..detectors import WEIGHTS_FILE
    from ..detectors.base import load_state_dict_strict

    if Path(checkpoint).is_file():
        if not hasattr(det, "load_imagenet"):
            raise ConfigError(f"init: {checkpoint} is a file; {type(det).__name__} takes only a fakebench checkpoint "
                              "folder (ImageNet initialisation: cnnspot, res50nodown)")
        det.load_imagenet(checkpoint)
        return
    path = Path(checkpoint) / WEIGHTS_FILE
    if not path.is_file():
        raise ConfigError(f"init: {path} not found (expected a fakebench checkpoint folder)")
    load_state_dict_strict(det, load_safetensors(path), str(path))


def _train_loader(train: list[Sample], cfg: TrainConfig) -> tuple[ImageDataset, DataLoader]:
    """The augmented, seeded, shuffled loader of the train split."""
    tt = TrainTransform(crop_size=cfg.crop, blur_prob=float(cfg.blur_prob), jpeg_prob=float(cfg.jpeg_prob), flip=cfg.flip,
                        extra=sharing_augmentation(cfg.share_platforms, cfg.share_assume_side) if cfg.share_prob else None,
                        extra_prob=float(cfg.share_prob), rot90=cfg.rot90)
    ds = ImageDataset(train, transform=tt, seed=cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    # the loader draws from gen too (its base seed), so the batches equal DataLoader(shuffle=True, generator=gen)
    batches = rank_batches(len(train), int(cfg.batch_size), gen, drop_last=len(train) > int(cfg.batch_size))
    dl = DataLoader(ds, batch_sampler=batches, generator=gen, collate_fn=collate_skip_bad)
    return ds, dl


def _schedule(opt: torch.optim.Optimizer, cfg: TrainConfig, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    if cfg.schedule not in ("constant", "cosine"):
        raise ConfigError(f"schedule: expected 'constant' or 'cosine', got {cfg.schedule!r}")
    if cfg.schedule == "cosine":  # decay to 5% of lr over the run
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(s / total, 1.0))))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)


#: fewer optimiser steps than this in a whole run rarely train a detector (the README's earlier
#: default, 2 steps per epoch on 160 images, ended at validation AUC 0.58)
MIN_STEPS = 200


def few_steps_warning(total: int, per_epoch: int, n_train: int, batch_size: int) -> str:
    """One line when a run has fewer than :data:`MIN_STEPS` optimiser steps ('' otherwise)."""
    if total >= MIN_STEPS:
        return ""
    return (f"only {total} optimiser steps in all ({per_epoch} per epoch: {n_train} training images in batches of "
            f"{batch_size}); detectors rarely learn in fewer than {MIN_STEPS}: lower --batch-size or raise --epochs")


def fit(det: torch.nn.Module, train: list[Sample], val: list[Sample], cfg: TrainConfig,
        objective: Objective = bce_objective, name: str = "detector") -> dict[str, Any]:
    """Train ``det`` in place: epochs of ``objective`` steps, validation AUC after each epoch,
    early stopping, the best epoch's weights restored, threshold calibrated on ``val``.
    Returns the history (per-epoch loss / val AUC, best val AUC, threshold, seconds, bad files).

    When the objective has a ``val_attack(det, x, y) -> x_adv`` (adversarial training), epochs
    are compared by the AUC on ATTACKED validation images (``val_robust_auc``): the epoch with
    the best clean AUC is usually the least robust one."""
    ds, dl = _train_loader(train, cfg)
    val_attack = getattr(objective, "val_attack", None)
    device = rank_device(cfg.device)
    det.to(device)
    model = det
    if world_size() > 1:
        if objective is not bce_objective:
            raise ConfigError("torchrun: only the plain cross-entropy objective trains under DistributedDataParallel "
                              "(adversarial training runs in one process)")
        model = wrap_ddp(det, device)
    opt = torch.optim.Adam(det.parameters(), lr=float(cfg.lr), weight_decay=cfg.weight_decay)
    total = cfg.max_steps or cfg.epochs * max(len(dl), 1)
    sched = _schedule(opt, cfg, total)
    # fine-tuning from a checkpoint (cfg.init) starts from a trained detector: no warning then
    few = "" if cfg.init else few_steps_warning(total, len(dl), len(train), int(cfg.batch_size))
    # the weights validated, selected and kept: the running average when cfg.ema > 0
    ema = (torch.optim.swa_utils.AveragedModel(det, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(
        float(cfg.ema)), use_buffers=True) if cfg.ema else None)
    kept_model = ema.module if ema is not None else det
    eval_tf = None  # validation = evaluation: whole images, the detector's own preprocessing (its crop option)
    best_auc, best_state, bad_epochs, step = -1.0, None, 0, 0
    history: dict[str, Any] = {"config": asdict(cfg), "epochs": [], "warnings": [few] if few else []}
    if few:
        log.warning("%s", few)
    t0 = time.time()
    bar = progress_bar(total, f"train {name}", cfg.progress, unit="step")
    for epoch in range(cfg.epochs):
        ds.set_epoch(epoch)
        losses, step = _epoch(det, model, dl, opt, sched, objective, cfg, step, bar, ema)
        yv, sv = predict_samples(kept_model, val, cfg.eval_batch_size, eval_tf) if val else (np.zeros(0), np.zeros(0))
        val_auc = metrics.auc(yv, sv) if len(yv) else float("nan")
        record = {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else None, "val_auc": val_auc,
                  "steps": step}
        if val_attack is not None and val:
            ya, sa = predict_samples(kept_model, val, cfg.eval_batch_size, eval_tf, attack=val_attack)
            record["val_robust_auc"] = val_auc = metrics.auc(ya, sa)
        history["epochs"].append(record)
        log.info("epoch %d: train loss %.4f, val AUC %.4f", epoch, np.mean(losses) if losses else float("nan"), val_auc)
        score = val_auc if np.isfinite(val_auc) else -float(np.mean(losses) if losses else 0.0)
        if score > best_auc + 1e-6:
            best_auc, bad_epochs = score, 0
            best_state = {k: v.detach().clone() for k, v in kept_model.state_dict().items()}
        else:
            bad_epochs += 1
            if bad_epochs >= cfg.patience:
                log.info("early stopping after epoch %d (no val AUC gain for %d epochs)", epoch, cfg.patience)
                break
        if cfg.max_steps and step >= cfg.max_steps:
            break
    bar.close()
    if best_state is not None:
        det.load_state_dict(best_state)
    det.eval()
    kept, yv, sv = score_samples(det, val, cfg.eval_batch_size, eval_tf) if val else ([], np.zeros(0), np.zeros(0))
    _calibrate(det, yv, sv)
    history.update({"best_val_auc": metrics.auc(yv, sv) if len(yv) else float("nan"), "threshold": det.threshold,
                    "seconds": time.time() - t0, "bad_files": dict(getattr(ds, "bad", {})),
                    "val_scores": [[val[i].path, int(y), float(z)] for i, y, z in zip(kept, yv, sv)]})
    return history


def _epoch(det: torch.nn.Module, model: torch.nn.Module, dl: DataLoader, opt: torch.optim.Optimizer, sched: Any,
           objective: Objective, cfg: TrainConfig, step: int, bar: Any,
           ema: Any = None) -> tuple[list[float], int]:
    """One pass over ``dl`` (stops at ``cfg.max_steps``). ``model`` is ``det`` or its DDP
    wrapper; ``ema`` (an ``AveragedModel`` of ``det``) is updated after every step.
    Returns (losses, step count so far)."""
    det.train()
    device = next(iter(det.parameters()), torch.zeros(0)).device
    losses: list[float] = []
    for batch in dl:
        if batch is None:
            continue
        x, y, _ = batch
        x, y = x.to(device), y.to(device)
        opt.zero_grad(set_to_none=True)
        loss = objective(model, x, y)
        loss.backward()
        opt.step()
        sched.step()
        if ema is not None:
            ema.update_parameters(det)
        losses.append(float(loss.detach()))
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        if cfg.max_steps and step >= cfg.max_steps:
            break
    return losses, step
