"""lgdk: Local and Global Dynamic Kernels for video object segmentation."""

__version__ = "0.4.0"
