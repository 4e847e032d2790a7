"""Post-training weight quantization: ACIQ's analytic clipping and its baselines."""

from ocrsr_lib.quant.aciq import PRIORS, aciq_alpha, expected_error

__all__ = ["PRIORS", "aciq_alpha", "expected_error"]
