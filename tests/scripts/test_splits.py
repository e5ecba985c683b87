"""The selection / report split of the development data."""

import pytest
from scripts.splits import PARTS, REPORT, SELECTION, in_part, part_of


def test_the_split_is_fixed_by_name_and_halves_many_names():
    names = [f"video-{i}" for i in range(400)]
    parts = [part_of(n) for n in names]
    assert parts == [part_of(n) for n in names] and set(parts) == set(PARTS)
    assert 150 < parts.count(SELECTION) < 250
    # names known to the project's figures: moving them would change the report set
    assert part_of("dogs-jump") == REPORT and part_of("blackswan") == SELECTION


def test_in_part_keeps_one_part_or_all():
    name = "camel"
    assert in_part(name, part_of(name)) and not in_part(name, ({*PARTS} - {part_of(name)}).pop())
    assert in_part(name, "all") and in_part(name, None)
    with pytest.raises(ValueError, match="unknown part"):
        in_part(name, "test")
