"""Personal data: masking, deliberate unmasking, one customer's export and deletion, retention."""

from tandem.privacy.masking import MaskingModelMissing, mask_many, mask_text

__all__ = ["MaskingModelMissing", "mask_many", "mask_text"]
