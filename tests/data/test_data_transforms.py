"""fakebench.data.transforms: the CNNSpot training recipe and the evaluation transform."""

from __future__ import annotations

import numpy as np
import pytest

from fakebench.data import degrade
from fakebench.data.transforms import EvalTransform, TrainTransform
from fakebench.errors import ConfigError, DataError


@pytest.fixture()
def img() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.kron(rng.random((6, 8, 3)), np.ones((6, 6, 1)))
    return np.clip(base * 0.8 + rng.normal(0, 0.05, base.shape), 0, 1).astype(np.float32)  # 36 x 48


def chw(a: np.ndarray) -> np.ndarray:
    return np.transpose(a, (2, 0, 1))


def test_train_transform_is_deterministic_given_the_rng(img):
    t = TrainTransform(crop_size=24, blur_prob=0.5, jpeg_prob=0.5)
    a = t(img, np.random.default_rng(7))
    b = t(img, np.random.default_rng(7))
    assert a.dtype == np.float32 and a.shape == (3, 24, 24)
    np.testing.assert_array_equal(a, b)
    outs = [t(img, np.random.default_rng(s)) for s in range(8)]
    assert len({o.tobytes() for o in outs}) == 8  # different generators, different augmentations


def test_probability_zero_never_degrades(img):
    t = TrainTransform(crop_size=None, blur_prob=0.0, jpeg_prob=0.0, flip=False)
    for s in range(20):
        np.testing.assert_array_equal(t(img, np.random.default_rng(s)), chw(img))


def test_blur_at_probability_one_is_the_degrade_blur(img):
    t = TrainTransform(crop_size=None, blur_prob=1.0, blur_sigma=(2.0, 2.0), jpeg_prob=0.0, flip=False)
    out = t(img, np.random.default_rng(0))
    np.testing.assert_allclose(out, chw(degrade.blur_np(img, 2.0)), atol=1e-6)
    assert out.std() < chw(img).std()


def test_jpeg_at_probability_one_is_the_degrade_jpeg(img):
    t = TrainTransform(crop_size=None, blur_prob=0.0, jpeg_prob=1.0, jpeg_quality=(40, 40), flip=False)
    out = t(img, np.random.default_rng(0))
    np.testing.assert_array_equal(out, chw(degrade.jpeg_np(img, 40)))
    assert np.abs(out - chw(img)).mean() > 0.005


def test_default_ranges_apply_varied_degradations(img):
    """blur sigma ~ U[0, 3] and quality ~ U{30..100}: many distinct outputs, all changed."""
    t = TrainTransform(crop_size=None, blur_prob=0.0, jpeg_prob=1.0, flip=False)
    outs = [t(img, np.random.default_rng(s)) for s in range(30)]
    assert all(np.abs(o - chw(img)).max() > 0 for o in outs)
    assert len({o.tobytes() for o in outs}) >= 15
    t = TrainTransform(crop_size=None, blur_prob=1.0, jpeg_prob=0.0, flip=False)
    stds = [t(img, np.random.default_rng(s)).std() for s in range(30)]
    assert max(stds) - min(stds) > 0.01


def test_probability_half_applies_about_half_the_time(img):
    t = TrainTransform(crop_size=None, blur_prob=0.5, blur_sigma=(1.0, 3.0), jpeg_prob=0.0, flip=False)
    changed = [not np.array_equal(t(img, np.random.default_rng(s)), chw(img)) for s in range(200)]
    assert 0.35 < np.mean(changed) < 0.65


def test_random_crop_and_flip(img):
    t = TrainTransform(crop_size=16, blur_prob=0.0, jpeg_prob=0.0, flip=True)
    full = chw(img)
    flips, positions = 0, set()
    for s in range(40):
        out = t(img, np.random.default_rng(s))
        assert out.shape == (3, 16, 16)
        found = None
        for flipped in (False, True):
            ref = full[:, :, ::-1] if flipped else full
            for top in range(36 - 16 + 1):
                for left in range(48 - 16 + 1):
                    if np.array_equal(ref[:, top : top + 16, left : left + 16], out):
                        found = (flipped, top, left)
                        break
                if found:
                    break
            if found:
                break
        assert found is not None  # every output is a crop of the (possibly flipped) input
        flips += found[0]
        positions.add(found[1:])
    assert 8 < flips < 32 and len(positions) > 20


def test_small_images_are_padded_or_refused(img):
    small = img[:10, :12]
    out = TrainTransform(crop_size=16)(small, np.random.default_rng(0))
    assert out.shape == (3, 16, 16)
    with pytest.raises(DataError, match="smaller than crop_size"):
        TrainTransform(crop_size=16, pad_if_needed=False)(small, np.random.default_rng(0))


@pytest.mark.parametrize("kwargs", [dict(blur_prob=1.5), dict(jpeg_prob=-0.1), dict(blur_sigma=(2, 1)),
                                    dict(jpeg_quality=(0, 50)), dict(jpeg_quality=(90, 30)), dict(crop_size=0)])
def test_train_transform_validates(kwargs):
    with pytest.raises(ConfigError):
        TrainTransform(**kwargs)


def test_eval_transform(img):
    np.testing.assert_array_equal(EvalTransform()(img), chw(img))
    np.testing.assert_array_equal(EvalTransform(crop_size=20)(img), chw(img)[:, 8:28, 14:34])
    np.testing.assert_array_equal(EvalTransform(crop_size=20, center=False)(img), chw(img)[:, :20, :20])
    assert EvalTransform(crop_size=64)(img).shape == (3, 64, 64)


def test_sharing_augmentation_in_training_transform():
    """TrainConfig.share_prob wires fakebench.data.sharing into the training transform: with
    probability 1 every image is the platform's resize + JPEG of itself (quality jittered)."""
    from fakebench.data.sharing import PLATFORMS, share_np
    from fakebench.errors import ConfigError
    from fakebench.train import sharing_augmentation

    rng0 = np.random.default_rng(0)
    img = np.clip(np.kron(rng0.random((8, 8, 3)), np.ones((8, 8, 1))) + rng0.normal(0, 0.05, (64, 64, 3)), 0, 1)
    aug = sharing_augmentation(["telegram"])
    tt = TrainTransform(flip=False, extra=aug, extra_prob=1.0)
    out = tt(img.astype(np.float32), np.random.default_rng(3)).transpose(1, 2, 0)
    # the same draws by hand: 7 transform numbers, the extra coin, the platform pick, the quality
    r = np.random.default_rng(3)
    r.random(7), r.random(), r.integers(1)
    ref = share_np(img.astype(np.float32), "telegram", rng=r, jitter=True)
    assert np.allclose(out, ref, atol=1e-6)
    assert np.abs(out - img).max() > 1 / 255  # JPEG changed it
    lo, hi = PLATFORMS["telegram"].quality_range
    assert lo < hi
    untouched = TrainTransform(flip=False, extra=aug, extra_prob=0.0)(img.astype(np.float32), np.random.default_rng(3))
    assert np.allclose(untouched.transpose(1, 2, 0), img, atol=1e-6)
    with pytest.raises(ConfigError, match="platform"):
        sharing_augmentation(["myspace"])
    with pytest.raises(ConfigError, match="extra"):
        TrainTransform(extra=5, extra_prob=0.5)
