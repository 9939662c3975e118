"""fakebench: measure and harden the adversarial robustness of AI-generated-image detectors."""

__version__ = "0.1.0"
