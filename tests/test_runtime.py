import platform
import subprocess
import sys

import pytest


@pytest.mark.parametrize("call", ["keep_large_allocations()", "limit_malloc_arenas(2)"])
def test_malloc_settings_apply_exactly_where_the_c_library_is_glibc(call):
    # in a child process: the test process keeps the C library's default settings
    code = f"from lgdk.runtime import *; print({call})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert out == str(glibc)


def test_cache_sizes_are_read_from_sys_or_none(tmp_path, monkeypatch):
    from lgdk import runtime

    index = tmp_path / "cpu0" / "cache" / "index3"
    index.mkdir(parents=True)
    (index / "level").write_text("3\n")
    (index / "size").write_text("32768K\n")
    real = runtime.Path
    monkeypatch.setattr(runtime, "Path", lambda p: real(str(p).replace(
        "/sys/devices/system/cpu", str(tmp_path))))
    assert runtime.cache_bytes(3) == 32 << 20
    assert runtime.cache_bytes(2) is None
