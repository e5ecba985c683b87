"""Average the weights of checkpoints of one run (milestones along it), for a model that
depends less on where the run happened to stop.

usage: python scripts/average_checkpoints.py A.safetensors B.safetensors ... --out AVG.safetensors

Every checkpoint must hold the same tensors; floating-point tensors are averaged (in
float32, stored in the first file's dtypes), integer ones taken from the last file, and
the last file's config and metadata kept.
"""

import argparse

from safetensors.torch import load_file

from lgdk.models.checkpoint import CheckpointError, read_metadata, write_safetensors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    metadata = dict(read_metadata(args.checkpoints[-1]))
    states = [load_file(p) for p in args.checkpoints]
    if any(set(s) != set(states[-1]) for s in states):
        raise CheckpointError("the checkpoints hold different tensors: average milestones of "
                              "one run only")
    averaged = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            mean = sum(s[key].float() for s in states) / len(states)
            averaged[key] = mean.to(states[0][key].dtype).contiguous()
        else:
            averaged[key] = last
    metadata["averaged_from"] = ", ".join(args.checkpoints)
    write_safetensors(args.out, averaged, metadata)
    print(f"wrote {args.out} (mean of {len(states)})")


if __name__ == "__main__":
    main()
