import platform
import subprocess
import sys


def test_keep_large_allocations_applies_exactly_where_the_c_library_is_glibc():
    # in a child process: the test process keeps the C library's default settings
    code = "from lgdk.runtime import keep_large_allocations; print(keep_large_allocations())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert out == str(glibc)
