"""The cards of fakebench's own attacks (see :mod:`fakebench.registry`).

One entry per registered attack: a new attack is one new module plus one card here (or one
:func:`fakebench.attacks.register` call in a plugin module). Nothing here imports torch.
"""

from __future__ import annotations

from ..registry import AttackCard

_M = "fakebench.attacks."
CF_PAPER = "Carlini & Farid, Evading deepfake-image detectors with white- and black-box attacks, CVPR Workshops 2020"
DEROSA = "settings of De Rosa et al., 2024"

CARDS: tuple[AttackCard, ...] = (
    AttackCard("none", "no attack: the clean images (baseline row)", _M + "degradations:build_none"),
    AttackCard("jpeg", "JPEG re-compression at a given quality (PIL encoder, chroma subsampling 4:2:0)",
               _M + "degradations:build_jpeg"),
    AttackCard("resize", "resize by a scale factor (optionally back to the original size)",
               _M + "degradations:build_resize"),
    AttackCard("blur", "Gaussian blur with a given sigma (pixels)", _M + "degradations:build_blur"),
    AttackCard("share", "social-network sharing simulation: resize to the platform's longest side + JPEG "
               "(platform=facebook|x|twitter|telegram)", _M + "degradations:build_share",
               paper="parameters: see fakebench.data.sharing"),
    AttackCard("pgd", "projected gradient descent, Linf or L2; preset='derosa2024' (= 'derosa2024-linf': Linf eps 8/255, "
               "step 2/255, 10 steps, uniform random start) or 'derosa2024-l2' (their shipped L2 PGD: eps 8, step 1.6, "
               "10 steps, [0, 1] units)", _M + "gradient:build_pgd", paper=f"Madry et al., ICLR 2018; {DEROSA}"),
    AttackCard("apgd", "Auto-PGD: step-size-free PGD with momentum and checkpoints (Croce & Hein 2020), Linf or L2, "
               "score or margin loss at the detector's threshold; options rho, eot_iter", _M + "apgd:build_apgd",
               paper="Croce & Hein, Reliable evaluation of adversarial robustness with an ensemble of diverse "
                     "parameter-free attacks, ICML 2020"),
    AttackCard("fgsm", "fast gradient sign method (one step of size eps); preset='derosa2024' sets only the budget "
               "8/255", _M + "gradient:build_fgsm", paper="Goodfellow, Shlens, Szegedy, ICLR 2015"),
    AttackCard("di-fgsm", "diverse-inputs iterative FGSM with torchattacks' DIFGSM defaults (random shrink to 0.9-1x, "
               "bilinear, zero-pad back, p 0.5); preset='derosa2024'", _M + "gradient:build_difgsm",
               paper=f"Xie et al., CVPR 2019; {DEROSA}"),
    AttackCard("r-fgsm", "R+FGSM: random sign step of alpha then gradient-sign steps with eps - alpha "
               "(Tramèr et al. 2018); not De Rosa et al.'s RFGSM (that is robust-fgsm)", _M + "gradient:build_rfgsm",
               paper="Tramèr et al., Ensemble adversarial training, ICLR 2018"),
    AttackCard("robust-fgsm", "Robust FGSM: iterative sign steps on a kappa-margin loss averaged over a fixed set of "
               "17 transforms (noise, blur, shifts, down-up resize), early stop once every transform is fooled at "
               "0.95; preset='derosa2024'", _M + "robust:build_robust_fgsm",
               paper=f"Hussain, Neekhara et al., Adversarial deepfakes, WACV 2021; {DEROSA} ('RFGSM')"),
    AttackCard("uap", "universal adversarial perturbation, DeepFool-based (overshoot 0.02, delta 0.01, patience 2), "
               "fitted on a set (80% passes / 20% fooling rate), resized/tiled to each image; preset='derosa2024'",
               _M + "universal:build_uap", paper=f"Moosavi-Dezfooli et al., CVPR 2017; {DEROSA}",
               path_options=("fit_on",)),
    AttackCard("sgd-uap", "universal perturbation fitted by stochastic gradient-sign ascent over mini-batches "
               "(Shafahi et al. 2020), resized/tiled to each image", _M + "universal:build_sgd_uap",
               paper="Shafahi et al., Universal adversarial training, AAAI 2020", path_options=("fit_on",)),
    AttackCard("cf-distortion", "Carlini & Farid distortion-minimising white-box attack: smallest L2 change that "
               "flips the decision (C&W: Adam on tanh, binary search on c); reports L0/L2",
               _M + "carlini_farid:build_cf_distortion", paper=CF_PAPER + "; Carlini & Wagner, IEEE S&P 2017"),
    AttackCard("cf-lossmax", "Carlini & Farid loss-maximising white-box attack at a tiny fixed Linf budget "
               "(default 1/255: each pixel moves by at most one grey level)", _M + "carlini_farid:build_cf_lossmax",
               paper=CF_PAPER),
    AttackCard("cf-lsb", "Carlini & Farid least-significant-bit attack: flip the lowest bit of pixels where the "
               "gradient agrees (each value moves by at most 1/255; exact 8-bit output)",
               _M + "carlini_farid:build_cf_lsb", paper=CF_PAPER),
    AttackCard("cf-patch", "Carlini & Farid universal adversarial patch over a fraction (default 1%) of the image, "
               "fitted on a set, pasted at random seeded positions", _M + "carlini_farid:build_cf_patch",
               paper=CF_PAPER + "; Brown et al., 2017", path_options=("fit_on",)),
    AttackCard("cf-transfer", "Carlini & Farid black-box transfer: attack a surrogate detector (surrogate=checkpoint "
               "dir) with a white-box attack (base='pgd' by default) and evaluate on the target",
               _M + "carlini_farid:build_cf_transfer", paper=CF_PAPER, path_options=("surrogate",)),
    AttackCard("cf-latent", "Carlini & Farid latent-space attack: move the generator latent (TAESD-family decoder, "
               "weights=DIR) within latent_eps so the decoded fake evades; universal=true shares one offset; reports "
               "PSNR to the decoded original", _M + "carlini_farid:build_cf_latent", paper=CF_PAPER,
               path_options=("weights",)),
    AttackCard("mimicry", "feature-space mimicry: move internal features to the other class's centroid; mode hide "
               "(whole image) or decoy (box/mask region) (Boato et al. 2024)", _M + "mimicry:build_mimicry",
               paper="Boato, De Natale, De Stefano, Pasquini, Roli, Pattern Recognition Letters 2024",
               path_options=("reference", "real_ref", "fake_ref")),
    AttackCard("launder", "Stable Diffusion laundering: latent-autoencoder round trip (tiny AE weights=DIR, or the SD "
               "VAE / img2img strength sweep via optional diffusers); direction spoof (Mandelli et al. 2024)",
               _M + "laundering:build_launder",
               paper="Mandelli, Bestagini, Tubaro, When synthetic traces hide real content: SD image laundering, "
                     "WIFS 2024", path_options=("weights", "vae_path", "pipeline_path")),
    AttackCard("square", "Square attack, score-based black-box random search under Linf (Andriushchenko et al. "
               "2020); options n_queries, p_init", _M + "blackbox:build_square",
               paper="Andriushchenko, Croce, Flammarion, Hein, Square Attack, ECCV 2020"),
    AttackCard("hopskipjump", "HopSkipJump, decision-based black-box attack (Chen et al. 2020), Linf or L2; result "
               "projected onto the eps-ball (norm='none': unbounded); options init_evals, max_evals, max_queries",
               _M + "blackbox:build_hopskipjump", paper="Chen, Jordan, Wainwright, HopSkipJumpAttack, IEEE S&P 2020"),
)
