"""What the benches print about the machine they ran on: the CPU, its deciding flags, the load.

    from machine import cpu_description   # bench/ is on sys.path when a bench runs as a script
"""

from __future__ import annotations

import os
import platform

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
"""CPU flags that decide torch's code paths (and so the figures)."""


def cpu_description() -> str:
    """The CPU model, core count, the flags in CPU_FLAGS (yes/no) and the load average."""
    model, flags = "", None
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as info:
            for line in info:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key == "flags" and flags is None:
                    flags = set(value.split())
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    shown = (" ".join(f"{flag}={'yes' if flag in flags else 'no'}" for flag in CPU_FLAGS) if flags is not None
             else "flags unknown (no /proc/cpuinfo)")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return f"CPU {model}, {os.cpu_count()} cores, {shown}; load average {load}"


def write_log(path, lines: list[str]) -> None:
    """Write a bench's log: the command as it was run (`sys.argv`), then its printed `lines`."""
    import sys
    from pathlib import Path

    command = f"$ .venv/bin/python bench/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}".rstrip()
    Path(path).write_text("\n".join([command, *lines]) + "\n")
