"""medical-imaging: DICOM, NIfTI or PNG scans -> a segmentation U-Net or a classifier, 2D or 3D.

Data is a labels CSV (`path` plus `label` for classification or `mask` for segmentation, optional
`patient_id` and `split`), or, for segmentation, `images/` and `masks/` folders paired by name, or split
folders `train/ val/ test/` (any alias) each laid out so. Scans are read into the closest RAS
orientation (`readers`, `dicom`), normalised per image (CT window, or percentile clipping, then
z-score) and resampled to one grid (`preprocess`). In 2D mode volumes become axial slices. Splits keep
every patient in one split (`layout`).

Only pixel data and geometry are read from DICOM headers; the PatientID, when used to group a
patient's series, is hashed in memory and never written. The monitored metric is the mean foreground
Dice (`dice`) for segmentation and the AUROC (`auroc`) for classification, beside a trivial and a
classical baseline each (`baselines`).
"""

from dlkit.registry import lazy_exports

RECIPE_META = {  # what `dlkit recipes` lists, without importing torch (dlkit/registry.py)
    "name": "medical-imaging",
    "task": "medical image segmentation / classification",
    "description": (
        "DICOM/NIfTI/PNG scans: U-Net segmentation or CNN/timm classification, 2D or 3D, split by patient."
    ),
    "default_model": "unet",
    "sample_data": "sample_data/medical_imaging",
    "monitor": "dice",  # `dlkit info`: monitored under the default config
}
__getattr__ = lazy_exports(__name__, MedicalImaging="recipe", recipe_config="config")

__all__ = ["recipe_config", "MedicalImaging"]
