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
