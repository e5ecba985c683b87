import torch

from lgdk.models.memory_bank import MemoryBank


def _bank_with_two_groups() -> tuple[MemoryBank, list[torch.Tensor]]:
    """Objects 0-1 from frame 0, object 2 from frame 1; three frames memorised."""
    bank, values = MemoryBank(), []
    bank.add_objects(2, 0)
    for t in range(3):
        if t == 1:
            bank.add_objects(1, 1)
        n = bank.num_objects
        value = torch.randn(1, n, 6, 3, 4)  # (B, N, Cv, h, w)
        values.append(value)
        bank.update(t, torch.randn(1, 5, 3, 4), value, torch.randn(1, n, 6), as_memory=True)
    return bank, values


def test_stacked_values_are_the_frames_values_in_position_major_memory():
    bank, values = _bank_with_two_groups()
    keys, stacked = bank.stacked(0, [0, 1])
    assert keys.shape == (1, 5, 3, 3, 4)
    assert stacked.shape == (1, 2, 6, 3, 3, 4)  # (B, n, Cv, T, h, w)
    expected = torch.stack([v[:, :2] for v in values], dim=3)
    assert torch.equal(stacked, expected)
    # rows of all objects' channels per memory position, without a copy
    rows = stacked.flatten(3).reshape(1, 2 * 6, 36).transpose(1, 2)
    assert rows.is_contiguous()


def test_a_later_group_reads_only_its_frames_and_objects():
    bank, values = _bank_with_two_groups()
    keys, stacked = bank.stacked(1, [2])
    assert keys.shape[2] == 2 and stacked.shape == (1, 1, 6, 2, 3, 4)
    assert torch.equal(stacked, torch.stack([v[:, 2:] for v in values[1:]], dim=3))


def test_the_same_memory_gives_the_same_stacked_keys_until_it_changes():
    bank, _ = _bank_with_two_groups()
    keys, values = bank.stacked(0, [0, 1])
    again = bank.stacked(0, [0, 1])
    assert again[0] is keys  # no new copy while nothing changed
    assert torch.equal(again[1], values)
    assert bank.stacked(1, [2])[0] is not keys  # another group: its own frames
    bank.update(3, torch.randn(1, 5, 3, 4), torch.randn(1, 3, 6, 3, 4), torch.randn(1, 3, 6),
                as_memory=False)  # a new previous frame
    after, _ = bank.stacked(0, [0, 1])
    assert after is not keys and after.shape[2] == 4
    assert torch.equal(after[:, :, :3], keys)
