import json

import numpy as np
import pytest
from PIL import Image

from lgdk.cli import main
from lgdk.data.masks import write_mask
from lgdk.eval.davis import EvalError, evaluate, seen_unseen_summary


def make_seq(root, name, masks, binary=False):
    folder = root / name
    folder.mkdir(parents=True)
    for i, m in enumerate(masks):
        if binary:
            Image.fromarray((m > 0).astype(np.uint8) * 255, mode="L").save(folder / f"{i:05d}.png")
        else:
            write_mask(folder / f"{i:05d}.png", m)


def frames(n, h=30, w=40, ids=(1,), shift=0):
    out = []
    for _ in range(n):
        m = np.zeros((h, w), np.uint8)
        for k, i in enumerate(ids):
            m[5 + 10 * k : 12 + 10 * k, 5 + shift : 20 + shift] = i
        out.append(m)
    return out


def test_perfect_prediction_scores_one_and_first_last_frames_are_skipped(tmp_path):
    gt = frames(5)
    make_seq(tmp_path / "gt", "a", gt)
    pred = [np.zeros_like(g) for g in gt]  # frames 0 and 4 wrong: they are not scored
    pred[1:4] = gt[1:4]
    make_seq(tmp_path / "pred", "a", pred)
    res = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    assert res["J&F-Mean"] == 1.0 and res["J-Recall"] == 1.0 and res["F-Decay"] == 0.0


def test_davis2016_binary_and_2017_palette_read_the_same(tmp_path):
    gt = frames(4)
    pred = frames(4, shift=3)
    make_seq(tmp_path / "gt16", "a", gt, binary=True)
    make_seq(tmp_path / "gt17", "a", gt)
    make_seq(tmp_path / "pred", "a", pred)
    r16 = evaluate(tmp_path / "pred", tmp_path / "gt16", workers=1)
    r17 = evaluate(tmp_path / "pred", tmp_path / "gt17", workers=1)
    assert r16["J-Mean"] == r17["J-Mean"] == pytest.approx(12 * 7 / (18 * 7))
    assert r16["F-Mean"] == r17["F-Mean"]


def test_global_means_pool_objects_not_sequences(tmp_path):
    # sequence a: one perfect object; sequence b: two objects, one missing (J = 0)
    make_seq(tmp_path / "gt", "a", frames(3))
    make_seq(tmp_path / "pred", "a", frames(3))
    make_seq(tmp_path / "gt", "b", frames(3, ids=(1, 2)))
    make_seq(tmp_path / "pred", "b", frames(3, ids=(1,)))
    res = evaluate(tmp_path / "pred", tmp_path / "gt", workers=2)
    assert res["J-Mean"] == pytest.approx(2 / 3)  # objects: 1, 1, 0
    assert res["sequences"]["b"]["J-Mean"] == pytest.approx(0.5)
    assert res["sequences"]["b"]["objects"]["2"]["J-Mean"] == 0.0


def test_missing_frame_wrong_size_unknown_id_and_non_png(tmp_path):
    make_seq(tmp_path / "gt", "a", frames(4))
    make_seq(tmp_path / "pred", "a", frames(4))
    (tmp_path / "pred" / "a" / "00002.png").unlink()
    with pytest.raises(EvalError, match="sequence a: predicted frame 00002.png is missing"):
        evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    write_mask(tmp_path / "pred" / "a" / "00002.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(EvalError, match="00002.png: prediction is 10x10"):
        evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    write_mask(tmp_path / "pred" / "a" / "00002.png", frames(1, ids=(3,))[0])
    with pytest.raises(EvalError, match=r"id\(s\) \[3\] are not in the ground truth"):
        evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    write_mask(tmp_path / "pred" / "a" / "00002.png", frames(1)[0])
    (tmp_path / "pred" / "a" / "notes.txt").write_text("x")
    with pytest.raises(EvalError, match="non-PNG"):
        evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)


def test_cli_eval_writes_json_and_csv_and_fails_cleanly(tmp_path, capsys):
    make_seq(tmp_path / "gt", "a", frames(4))
    make_seq(tmp_path / "pred", "a", frames(4, shift=2))
    code = main(["eval", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv")])
    assert code == 0
    res = json.loads((tmp_path / "r.json").read_text())
    for key in ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"):
        assert 0 <= res[key] <= 1 or key.endswith("Decay")
    assert set(res["sequences"]["a"]) == {"J&F-Mean", "J-Mean", "F-Mean", "objects"}
    assert "GLOBAL" in (tmp_path / "r.csv").read_text()
    (tmp_path / "empty").mkdir()
    code = main(["eval", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "empty")])
    assert code == 2
    assert "has no sequence folders" in capsys.readouterr().err


def test_youtube_objects_scored_from_their_appearance_and_seen_unseen(tmp_path):
    gt = frames(4, ids=(1, 2))
    for t in (0, 1):
        gt[t][gt[t] == 2] = 0  # object 2 appears at frame 2
    make_seq(tmp_path / "gt", "a", gt)
    pred = [g.copy() for g in gt]
    pred[2][pred[2] == 2] = 0  # its first frame is given as input: not scored
    make_seq(tmp_path / "pred", "a", pred)
    res = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1, youtube=True)
    assert res["sequences"]["a"]["objects"]["2"]["J-Mean"] == 1.0
    summary = seen_unseen_summary(res, {"a/2"})
    assert summary["J_unseen"] == 1.0 and summary["J_seen"] == 1.0
    assert summary["Overall"] == 1.0


@pytest.mark.parametrize("flags, message", [
    (["--csv", "pred"], "--csv"),
    (["--json", "file/r.json"], "cannot write in"),
    (["--unseen", "missing.txt"], "--unseen"),
])
def test_cli_eval_checks_its_output_and_unseen_files_first(tmp_path, capsys, flags, message):
    make_seq(tmp_path / "gt", "a", frames(4))
    make_seq(tmp_path / "pred", "a", frames(4))
    (tmp_path / "file").write_text("x")
    code = main(["eval", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 flags[0], str(tmp_path / flags[1])])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert "eval: 100%" not in err  # refused before any sequence was scored
