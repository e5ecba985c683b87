import platform

from lgdk.runtime import keep_large_allocations


def test_keep_large_allocations_applies_on_glibc_and_is_harmless_elsewhere():
    applied = keep_large_allocations()
    assert isinstance(applied, bool)
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert applied
