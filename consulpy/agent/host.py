"""What /v1/agent/host reports about the machine an agent runs on (Consul's debug host info).

Consul fills it with gopsutil; consulpy reads what Linux's /proc and the standard library
give, under gopsutil's camelCase keys. A collector that fails leaves its key null and adds
its error to `Errors` (as Consul does); nothing here blocks for long (small /proc files).
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def _meminfo() -> dict[str, Any]:
    values: dict[str, int] = {}
    for line in (PROC / "meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            values[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    total = values.get("MemTotal", 0)
    free = values.get("MemFree", 0)
    available = values.get("MemAvailable", free)
    buffers, cached = values.get("Buffers", 0), values.get("Cached", 0)
    used = total - free - buffers - cached
    return {
        "total": total,
        "available": available,
        "used": used,
        "usedPercent": 100.0 * used / total if total else 0.0,
        "free": free,
        "buffers": buffers,
        "cached": cached,
        "swapTotal": values.get("SwapTotal", 0),
        "swapFree": values.get("SwapFree", 0),
    }


def _cpus() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    block: dict[str, str] = {}
    text = (PROC / "cpuinfo").read_text()
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if block:
                out.append(
                    {
                        "cpu": int(block.get("processor", len(out))),
                        "vendorId": block.get("vendor_id", ""),
                        "family": block.get("cpu family", ""),
                        "model": block.get("model", ""),
                        "stepping": int(block.get("stepping", "0") or 0),
                        "physicalId": block.get("physical id", ""),
                        "coreId": block.get("core id", ""),
                        "cores": 1,
                        "modelName": block.get("model name", ""),
                        "mhz": float(block.get("cpu MHz", "0") or 0),
                        "cacheSize": int((block.get("cache size", "0").split() or ["0"])[0]),
                        "flags": block.get("flags", "").split(),
                        "microcode": block.get("microcode", ""),
                    }
                )
            block = {}
            continue
        key, _, value = line.partition(":")
        block[key.strip()] = value.strip()
    return out


def _host() -> dict[str, Any]:
    boot = 0
    for line in (PROC / "stat").read_text().splitlines():
        if line.startswith("btime "):
            boot = int(line.split()[1])
    uname = platform.uname()
    os_release: dict[str, str] = {}
    release_file = Path("/etc/os-release")
    if release_file.exists():
        for line in release_file.read_text().splitlines():
            key, _, value = line.partition("=")
            os_release[key] = value.strip().strip('"')
    host_id = ""
    for candidate in (Path("/etc/machine-id"), PROC / "sys/kernel/random/boot_id"):
        if candidate.exists():
            host_id = candidate.read_text().strip()
            break
    procs = sum(1 for p in PROC.iterdir() if p.name.isdigit())
    return {
        "hostname": socket.gethostname(),
        "uptime": max(0, int(time.time()) - boot) if boot else 0,
        "bootTime": boot,
        "procs": procs,
        "os": uname.system.lower(),
        "platform": os_release.get("ID", ""),
        "platformFamily": os_release.get("ID_LIKE", os_release.get("ID", "")),
        "platformVersion": os_release.get("VERSION_ID", ""),
        "kernelVersion": uname.release,
        "kernelArch": uname.machine,
        "virtualizationSystem": "",
        "virtualizationRole": "",
        "hostId": host_id,
    }


def _disk() -> dict[str, Any]:
    usage = shutil.disk_usage("/")
    stat = os.statvfs("/")
    inodes_total, inodes_free = stat.f_files, stat.f_ffree
    inodes_used = inodes_total - inodes_free
    fstype = ""
    for line in (PROC / "mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[1] == "/":
            fstype = fields[2]
    return {
        "path": "/",
        "fstype": fstype,
        "total": usage.total,
        "free": usage.free,
        "used": usage.used,
        "usedPercent": 100.0 * usage.used / usage.total if usage.total else 0.0,
        "inodesTotal": inodes_total,
        "inodesUsed": inodes_used,
        "inodesFree": inodes_free,
        "inodesUsedPercent": 100.0 * inodes_used / inodes_total if inodes_total else 0.0,
    }


COLLECTORS: dict[str, Callable[[], Any]] = {
    "Memory": _meminfo,
    "CPU": _cpus,
    "Host": _host,
    "Disk": _disk,
}


def host_info() -> dict[str, Any]:
    """Consul's HostInfo: Memory, CPU, Host, Disk, CollectionTime (unix ns), Errors."""
    out: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    for key, collect in COLLECTORS.items():
        try:
            out[key] = collect()
        except (OSError, ValueError, IndexError) as exc:
            out[key] = None
            errors.append({"Error": f"{key}: {exc}"})
    out["CollectionTime"] = time.time_ns()
    out["Errors"] = errors or None
    return out
