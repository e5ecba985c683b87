"""Training-free floor: predict every frame as the first frame's mask (DAVIS layout).

usage: python scripts/baseline_first_mask.py DAVIS_ROOT PRED_DIR
then:  lgdk eval --pred PRED_DIR --gt DAVIS_ROOT/Annotations
"""

import sys
from pathlib import Path

from lgdk.data.layouts import davis_frames, davis_sequences
from lgdk.data.masks import read_mask, write_mask


def main(root: Path, out: Path) -> None:
    for seq in davis_sequences(root):
        frames = davis_frames(root, seq)
        first = read_mask(frames[0][1])
        (out / seq).mkdir(parents=True, exist_ok=True)
        for image, _ in frames:
            write_mask(out / seq / f"{image.stem}.png", first)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
