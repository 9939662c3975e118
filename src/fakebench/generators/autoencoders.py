"""AutoGAN-style tiny convolutional autoencoders: cheap generators with real up-sampling traces.

Zhang, Karaman and Chang, "Detecting and Simulating Artifacts in GAN Fake Images" (WIFS 2019,
"AutoGAN") showed that the up-sampling layers shared by GAN generators leave periodic traces
(spectral peaks at the up-sampling frequencies) and that an autoencoder with the same
up-sampling layers, trained only to reconstruct real images, reproduces those traces. The
models here follow that recipe at toy scale (a few tens of thousands of parameters, trained
for a few hundred Adam steps on CPU) with one of four up-sampling layers:

* ``"tconv"``: transposed convolution, kernel 3, stride 2 (uneven kernel overlap, the classic
  checkerboard of Odena et al. 2016);
* ``"nearest"``: nearest-neighbour 2x + 3x3 convolution;
* ``"bilinear"``: bilinear 2x + 3x3 convolution;
* ``"pixelshuffle"``: 3x3 convolution to 4x channels + pixel shuffle (sub-pixel convolution,
  Shi et al. 2016).

Images are RGB float tensors (N, 3, H, W) in [0, 1].
"""

from __future__ import annotations

import logging
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

log = logging.getLogger(__name__)

UPSAMPLERS: tuple[str, ...] = ("tconv", "nearest", "bilinear", "pixelshuffle")
DEFAULT_WIDTHS: tuple[int, ...] = (16, 32, 64)

ImageBatch = Union[torch.Tensor, np.ndarray, Sequence[np.ndarray]]


def _conv3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1)


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2)


def upsampling_layer(kind: str, c_in: int, c_out: int) -> nn.Module:
    """A 2x up-sampling layer of the given kind mapping ``c_in`` to ``c_out`` channels."""
    if kind == "tconv":
        return nn.ConvTranspose2d(c_in, c_out, kernel_size=3, stride=2, padding=1, output_padding=1)
    if kind in ("nearest", "bilinear"):
        up = nn.Upsample(scale_factor=2, mode=kind) if kind == "nearest" else \
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        return nn.Sequential(up, _conv3(c_in, c_out))
    if kind == "pixelshuffle":
        return nn.Sequential(_conv3(c_in, 4 * c_out), nn.PixelShuffle(2))
    raise ValueError(f"unknown upsampler {kind!r}; choose one of {', '.join(UPSAMPLERS)}")


class TinyConvAE(nn.Module):
    """AutoGAN-style convolutional autoencoder (Zhang, Karaman, Chang 2019).

    Encoder: 3x3 conv to ``widths[0]`` channels, then ``len(widths) - 1`` stride-2 3x3 convs
    (``widths[i] -> widths[i+1]``); decoder: as many 2x up-sampling layers of kind
    ``upsampler`` back to ``widths[0]`` channels, then a 3x3 conv to RGB. LeakyReLU(0.2) after
    every layer but the last (plain ReLU trains the transposed-convolution model markedly
    worse in a few hundred steps: about 19 dB instead of 25 dB PSNR). ``forward`` is unclamped (for training and gradients);
    :meth:`roundtrip` pads, crops and clamps to [0, 1]. Internally the network sees and
    produces [-1, 1] values.
    """

    def __init__(self, upsampler: str = "tconv", widths: Sequence[int] = DEFAULT_WIDTHS) -> None:
        super().__init__()
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"unknown upsampler {upsampler!r}; choose one of {', '.join(UPSAMPLERS)}")
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2:
            raise ValueError("widths needs at least two entries (one down-sampling)")
        self.upsampler = upsampler
        self.widths = widths
        enc: list[nn.Module] = [_conv3(3, widths[0]), _act()]
        for a, b in zip(widths[:-1], widths[1:]):
            enc += [_conv3(a, b, stride=2), _act()]
        dec: list[nn.Module] = []
        for a, b in zip(widths[:0:-1], widths[-2::-1]):
            dec += [upsampling_layer(upsampler, a, b), _act()]
        dec.append(_conv3(widths[0], 3))
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    @property
    def factor(self) -> int:
        """Total down-sampling factor (2 ** number of stride-2 layers)."""
        return 2 ** (len(self.widths) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # work on [-1, 1] internally: with inputs and targets centred, the transposed-conv
        # model trains reliably (uncentred, 1 seed in 3 stalled near 18 dB PSNR)
        return self.decoder(self.encoder(x * 2.0 - 1.0)) * 0.5 + 0.5

    def roundtrip(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> reconstruction in [0, 1]; any H, W (reflect-padded to a
        multiple of :attr:`factor`, cropped back). Differentiable almost everywhere."""
        h, w = x.shape[-2:]
        f = self.factor
        ph, pw = (-h) % f, (-w) % f
        xin = F.pad(x, (0, pw, 0, ph), mode="reflect" if (ph < h and pw < w) else "replicate") if (ph or pw) else x
        p = next(self.parameters())
        y = self(xin.to(device=p.device, dtype=p.dtype))[..., :h, :w].clamp(0, 1)
        return y.to(device=x.device, dtype=x.dtype)


def as_image_list(images: ImageBatch) -> list[torch.Tensor]:
    """Normalise images (HxWx3 arrays in [0, 1], or an (N, 3, H, W) tensor) to (3, H, W) tensors."""
    if isinstance(images, torch.Tensor):
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W), got {tuple(images.shape)}")
        return [t.float() for t in images]
    if isinstance(images, np.ndarray) and images.ndim == 4:
        images = list(images)
    out = []
    for a in images:
        arr = np.asarray(a, dtype=np.float32)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"expected HxWx3 images, got {arr.shape}")
        out.append(torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))))
    return out


def sample_patches(images: Sequence[torch.Tensor], n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` random ``size`` x ``size`` crops (N, 3, size, size) from (3, H, W) images, with a
    random flip, drawn with the local generator ``gen``."""
    usable = [im for im in images if im.shape[1] >= size and im.shape[2] >= size]
    if not usable:
        raise ValueError(f"no training image is at least {size}x{size} pixels")
    idx = torch.randint(len(usable), (n,), generator=gen)
    out = torch.empty((n, 3, size, size))
    for j, i in enumerate(idx.tolist()):
        im = usable[i]
        y = int(torch.randint(im.shape[1] - size + 1, (1,), generator=gen))
        x = int(torch.randint(im.shape[2] - size + 1, (1,), generator=gen))
        crop = im[:, y:y + size, x:x + size]
        if bool(torch.rand((), generator=gen) < 0.5):
            crop = crop.flip(-1)
        out[j] = crop
    return out


def train_autoencoder(
    images: ImageBatch,
    upsampler: str = "tconv",
    *,
    seed: int = 0,
    steps: int = 200,
    batch_size: int = 8,
    patch: int = 32,
    lr: float = 2e-3,
    loss: str = "l1",
    widths: Sequence[int] = DEFAULT_WIDTHS,
    progress: bool = False,
    num_threads: int | None = 1,
) -> TinyConvAE:
    """Train a :class:`TinyConvAE` to reconstruct random ``patch``-pixel crops of ``images``.

    Adam (``lr``, linear warm-up over the first 10 % of the steps, then cosine decay to 10 %),
    ``steps`` steps of ``batch_size`` crops, L1 or L2
    (``loss="l2"``) reconstruction loss. Weights and crops depend only on ``seed`` (a forked
    global RNG seeds the weights, a local :class:`torch.Generator` draws the crops), so the
    same seed gives the same model on the same machine; the caller's RNG state is untouched.
    The per-step losses are kept in ``model.history``. Returns the model in eval mode.

    ``num_threads`` sets torch's intra-op threads for the duration (restored afterwards; None
    leaves them alone). The default 1 is deliberate: these tensors are so small that a second
    thread gains little, while on a busy machine OpenMP synchronisation made 2 threads 10-15x
    slower than 1 in our measurements.
    """
    if loss not in ("l1", "l2"):
        raise ValueError(f"loss must be 'l1' or 'l2', got {loss!r}")
    ims = as_image_list(images)
    old_threads = torch.get_num_threads()
    if num_threads is not None and num_threads != old_threads:
        torch.set_num_threads(num_threads)
    try:
        return _train(ims, upsampler, seed, steps, batch_size, patch, lr, loss, widths, progress)
    finally:
        if torch.get_num_threads() != old_threads:
            torch.set_num_threads(old_threads)


def _train(ims: list[torch.Tensor], upsampler: str, seed: int, steps: int, batch_size: int, patch: int,
           lr: float, loss: str, widths: Sequence[int], progress: bool) -> TinyConvAE:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TinyConvAE(upsampler, widths)
    gen = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(s / max(steps, 1), 1.0)))))
    bar = None
    if progress:
        from ..progress import progress_bar

        bar = progress_bar(steps, f"train {upsampler} AE", enabled=True, unit="step")
    history: list[float] = []
    model.train()
    for _ in range(steps):
        x = sample_patches(ims, batch_size, patch, gen)
        y = model(x)
        err = (y - x).abs().mean() if loss == "l1" else ((y - x) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        err.backward()
        opt.step()
        sched.step()
        history.append(float(err.detach()))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]:.4f}")
    if bar is not None:
        bar.close()
    model.eval()
    model.history = history  # type: ignore[attr-defined]
    log.debug("trained %s AE: loss %.4f -> %.4f", upsampler, history[0] if history else float("nan"),
              float(np.mean(history[-10:])) if history else float("nan"))
    return model


@torch.no_grad()
def apply_generator(model: nn.Module, images: torch.Tensor, batch_size: int = 32, context: int = 8) -> torch.Tensor:
    """Pass (N, 3, H, W) images through a generator with a ``roundtrip`` method (or a plain
    module) in batches, each reflect-padded by ``context`` pixels (so the image border does
    not see zero padding) and cropped back. Returns clamped [0, 1] float32, same shape."""
    fn = getattr(model, "roundtrip", model)
    outs = []
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size].float()
        c = min(context, x.shape[-2] - 1, x.shape[-1] - 1)
        xp = F.pad(x, (c, c, c, c), mode="reflect") if c > 0 else x
        y = fn(xp)
        if c > 0:
            y = y[..., c:c + x.shape[-2], c:c + x.shape[-1]]
        outs.append(y.clamp(0, 1).float())
    return torch.cat(outs) if outs else images.float().clone()
