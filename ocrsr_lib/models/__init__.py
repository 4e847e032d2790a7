"""Models: every SR model takes and returns RGB images in [0, 1]."""

from ocrsr_lib.models.bicubic import Bicubic

__all__ = ["Bicubic"]
