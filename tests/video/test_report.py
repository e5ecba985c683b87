"""`lgdk segment --report`: each frame's doubt as JSON, the given frames sure."""

import json

from lgdk.infer.doubt import ObjectMeasure
from lgdk.video.report import report


def test_the_report_lists_every_frame_and_the_worst(tmp_path):
    m = [[ObjectMeasure(1, 1.0, 0.1)], [ObjectMeasure(1, 0.3, 0.1)], None]
    content = report(["a", "b", "c"], m, {0})
    json.dumps(content)  # plain JSON
    assert content["given"] == [0] and content["worst"] == [1]
    assert [f["name"] for f in content["frames"]] == ["a", "b", "c"]
    assert content["frames"][1]["objects"]["1"]["certainty"] == 0.3
