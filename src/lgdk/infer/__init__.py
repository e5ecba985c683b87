"""The streaming algorithm: the step interface both backends offer (`backend`), the
predictor at the model's resolution (`predictor`), test-time augmentation and ensembles as
wrappers (`tta`), and loading models with their inference settings (`loading`)."""
