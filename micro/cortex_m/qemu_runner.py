"""Build the Cortex-M images of micro/cortex_m and run them under qemu-system-arm.

Used by tests/test_cortex_m.py (kernel tests on the target ISA) and
benchmarks/mcu_cycles.py (exact instruction counts). Needs Debian's
``gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm`` (``.ci/run`` installs
them through ``run.sh``) and a host C compiler for the counting plugin.

    make_image("kernel-tests", "m4", build_dir, VECTORS="vectors.c")
    result = run_image(build_dir / "kernel_tests.elf", "m4")
    counts = count_instructions(build_dir / "bench.elf", "m4", plugin, build_dir / "marks.txt")
"""

import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, NamedTuple, Set

HERE = Path(__file__).resolve().parent

# core -> qemu machine and cpu (the boards whose memory maps the linker scripts describe)
CORES = {
    "m4": ("mps2-an386", "cortex-m4"),
    "m55": ("mps3-an547", "cortex-m55"),
}


class RunResult(NamedTuple):
    returncode: int
    output: str


def missing_tools() -> List[str]:
    """What is missing to build and run the images (empty when everything is there)."""
    missing = [tool for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "make", "cc")
               if shutil.which(tool) is None]
    if "arm-none-eabi-gcc" not in missing:
        specs = subprocess.run(["arm-none-eabi-gcc", "-print-file-name=nano.specs"],
                               capture_output=True, text=True, check=False).stdout.strip()
        if not Path(specs).is_file():
            missing.append("newlib-nano (libnewlib-arm-none-eabi)")
    return missing


def _check_core(core: str) -> None:
    if core not in CORES:
        raise ValueError(f"qemu_runner: core must be one of {sorted(CORES)}, got {core!r}")


def make_image(target: str, core: str, build_dir, **variables) -> Path:
    """``make -C micro/cortex_m <target> CORE=<core> BUILD=<build_dir> VAR=value...``.

    Raises RuntimeError with the compiler output if the build fails."""
    _check_core(core)
    command = ["make", "-s", "-j2", "-C", str(HERE), target, f"CORE={core}", f"BUILD={build_dir}"]
    command += [f"{key}={value}" for key, value in variables.items()]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"qemu_runner: {' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return Path(build_dir)


def qemu_command(elf, core: str) -> List[str]:
    """The qemu-system-arm command line that runs ``elf`` on ``core``'s board."""
    _check_core(core)
    machine, cpu = CORES[core]
    return ["qemu-system-arm", "-machine", machine, "-cpu", cpu, "-semihosting", "-nographic",
            "-monitor", "none", "-kernel", str(elf)]


def run_image(elf, core: str, *, extra=(), timeout: float = 300.0) -> RunResult:
    """Runs a bare-metal image to its semihosting exit; returns its exit status and output."""
    done = subprocess.run(qemu_command(elf, core) + list(extra), capture_output=True,
                          text=True, timeout=timeout, check=False)
    return RunResult(done.returncode, done.stdout + done.stderr)


def symbol_address(elf, name: str) -> int:
    """Address of a symbol in ``elf`` (Thumb bit cleared)."""
    listing = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                             check=True).stdout
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16) & ~1
    raise ValueError(f"qemu_runner: symbol {name!r} not found in {elf}")


def count_instructions(elf, core: str, plugin, counts_path, *, mark: str = "bench_mark",
                       timeout: float = 600.0):
    """Runs ``elf`` with the counting plugin watching ``mark``.

    Returns (RunResult, counts): counts[i] = instructions executed when ``mark``
    started for the i-th time."""
    address = symbol_address(elf, mark)
    extra = ["-plugin", f"{plugin},mark={address:#x},out={counts_path}"]
    result = run_image(elf, core, extra=extra, timeout=timeout)
    counts = [int(line.split()[1]) for line in Path(counts_path).read_text().splitlines()
              if line.startswith("mark ")]
    return result, counts


def single_step_counts(elf, core: str, trace_path, *, mark: str = "bench_mark",
                       timeout: float = 600.0):
    """The same marks counted a second, independent way: qemu translates one
    instruction per block (-singlestep) and logs every block it executes
    (-d exec,nochain); the instruction count at a mark is the number of log
    lines before the mark's address. Slow: for small images only."""
    address = symbol_address(elf, mark)
    extra = ["-singlestep", "-d", "exec,nochain", "-D", str(trace_path)]
    result = run_image(elf, core, extra=extra, timeout=timeout)
    pattern = re.compile(r"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/")
    counts = []
    executed = 0
    with open(trace_path, encoding="ascii", errors="replace") as trace:
        for line in trace:
            match = pattern.match(line)
            if match is None:
                continue
            if int(match.group(1), 16) == address:
                counts.append(executed)
            executed += 1
    return result, counts


def section_sizes(objects) -> dict:
    """``arm-none-eabi-size`` (Berkeley format) of object files: {name: (text, data, bss)}."""
    listing = subprocess.run(["arm-none-eabi-size"] + [str(o) for o in objects],
                             capture_output=True, text=True, check=True).stdout
    sizes = {}
    for line in listing.splitlines()[1:]:
        text, data, bss, _, _, name = line.split(None, 5)
        sizes[Path(name).stem] = (int(text), int(data), int(bss))
    return sizes



_BRANCH = re.compile(r"\s(?:bl|blx|b|b\.w|b\.n|b[a-z]{2}(?:\.[wn])?)\s+[0-9a-f]+ <([\w.]+)(?:\+0x[0-9a-f]+)?>")


def call_graph(elf) -> Dict[str, Set[str]]:
    """Direct calls and tail branches between the functions of ``elf`` (from
    ``arm-none-eabi-objdump -d``): {function: functions it branches into}."""
    listing = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True,
                             text=True, check=True).stdout
    graph: Dict[str, Set[str]] = defaultdict(set)
    current = None
    for line in listing.splitlines():
        header = re.match(r"^[0-9a-f]+ <([\w.]+)>:", line)
        if header:
            current = header.group(1)
            continue
        branch = _BRANCH.search(line)
        if branch and current is not None and branch.group(1) != current:
            graph[current].add(branch.group(1))
    return graph


def reachable_code_bytes(elf, root: str, exclude=()) -> int:
    """Code bytes (symbol sizes) of the functions a call of ``root`` can reach
    through direct calls, ``root`` itself and ``exclude`` not counted."""
    graph = call_graph(elf)
    listing = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True,
                             text=True, check=True).stdout
    sizes = {parts[3]: int(parts[1], 16) for parts in map(str.split, listing.splitlines())
             if len(parts) == 4 and parts[2] in "tT"}
    if root not in sizes:
        raise ValueError(f"qemu_runner: function {root!r} not found in {elf}")
    seen, todo = set(), [root]
    while todo:
        name = todo.pop()
        if name in seen or name in exclude:
            continue
        seen.add(name)
        todo.extend(graph.get(name, ()))
    return sum(sizes.get(name, 0) for name in seen - {root})
