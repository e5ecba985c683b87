"""Training-free floor: warp the first mask frame by frame along optical flow
(OpenCV's Farneback flow, backward from each frame to the previous one).

usage: pip install opencv-python-headless
       python scripts/baseline_flow_warp.py DAVIS_ROOT PRED_DIR
then:  lgdk eval --pred PRED_DIR --gt DAVIS_ROOT/Annotations
"""

import sys
from pathlib import Path

import cv2
import numpy as np

from lgdk.data.layouts import davis_frames, davis_sequences
from lgdk.data.masks import read_mask, write_mask


def warp(mask: np.ndarray, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Pull each pixel of the current frame from where the flow says it was before."""
    flow = cv2.calcOpticalFlowFarneback(current, previous, None, 0.5, 4, 21, 3, 7, 1.5, 0)
    h, w = mask.shape
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(mask, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_NEAREST)


def main(root: Path, out: Path) -> None:
    for seq in davis_sequences(root):
        frames = davis_frames(root, seq)
        mask = read_mask(frames[0][1])
        previous = cv2.imread(str(frames[0][0]), cv2.IMREAD_GRAYSCALE)
        (out / seq).mkdir(parents=True, exist_ok=True)
        write_mask(out / seq / f"{frames[0][0].stem}.png", mask)
        for image, _ in frames[1:]:
            current = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
            mask = warp(mask, previous, current)
            write_mask(out / seq / f"{image.stem}.png", mask)
            previous = current


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
