"""Build script: metadata lives in setup.cfg; this file only adds the C extension.

The extension tfq_plus.converters._tfqp_kernels is the host build of the portable
C kernels in micro/kernels (used by converters.verify() and host benchmarks).
On x86-64 hosts whose CPU has POPCNT/AVX2 the kernels are compiled with their
compile-time fast paths (64-bit popcount; AVX2 XNOR-popcount kernels and int8
packing), which produce the same bytes as the portable path (make -C micro test
compares them). Set TFQP_PORTABLE=1 to build the portable C99 path only (e.g. for
a wheel meant for other machines).
"""

import glob
import os
import platform
import sys

from setuptools import Extension, setup


def _cpu_flags():
    """Feature flags of the building CPU (Linux /proc/cpuinfo), else empty."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _kernel_compile_args():
    if sys.platform == "win32":
        return ["/O2"], []
    args = ["-O3", "-fvisibility=hidden"]
    macros = []
    if os.environ.get("TFQP_PORTABLE", "") not in ("", "0"):
        macros.append(("TFQP_PORTABLE", "1"))
    elif platform.machine().lower() in ("x86_64", "amd64"):
        flags = _cpu_flags()
        if "popcnt" in flags:
            args.append("-mpopcnt")
        if "avx2" in flags:
            args.append("-mavx2")
    return args, macros


_args, _macros = _kernel_compile_args()

kernels = Extension(
    "tfq_plus.converters._tfqp_kernels",
    sources=["converters/_tfqp_kernels.c"] + sorted(glob.glob("micro/kernels/*.c")),
    include_dirs=["micro/include", "micro/kernels"],
    depends=sorted(glob.glob("micro/include/tfqp/*.h") + glob.glob("micro/kernels/*.h")),
    define_macros=_macros,
    extra_compile_args=_args,
)

setup(ext_modules=[kernels])
