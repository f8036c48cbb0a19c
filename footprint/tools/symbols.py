#!/usr/bin/env python3
"""Flash by crate (and by cellular_ota module) from `llvm-nm --print-size --demangle`.

Usage: symbols.py NM ELF [--modules] [--top N]

Only symbols in allocated flash sections count: code (t/T/w/W), read-only data (r/R).
A symbol is attributed to the first crate named in its demangled path, so a generic
instantiation such as `cellular_ota::update::flow::run<footprint::ScriptUart, ..>` or
`<cellular_ota::quectel::http::HttpConfig as cellular_ota::at::AtCommand>::encode` counts
for cellular_ota, while `core::slice::sort::<cellular_ota::..>` counts for core. Anonymous
constants (`.Lanon.*`: string literals, tables) cannot be attributed and are listed apart.
"""
import collections
import re
import subprocess
import sys

LEGACY = {"$LT$": "<", "$GT$": ">", "$u20$": " ", "$C$": ",", "$RF$": "&", "$BP$": "*",
          "$LP$": "(", "$RP$": ")", "$u7b$": "{", "$u7d$": "}", "$u5b$": "[", "$u5d$": "]",
          "$u27$": "'", "$u3b$": ";", "$u22$": '"', "$u2b$": "+", "..": "::"}


def clean(name):
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    for k, v in LEGACY.items():
        name = name.replace(k, v)
    return name.lstrip("_")


def crate_of(name):
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)::", name)
    return m.group(1) if m else None


def main():
    nm, elf = sys.argv[1], sys.argv[2]
    modules = "--modules" in sys.argv
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 0
    out = subprocess.run([nm, "--print-size", "--demangle", elf], check=True,
                         capture_output=True, text=True).stdout
    by = collections.Counter()
    syms = []
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) != 4 or parts[2] not in "tTwWrR":
            continue
        size = int(parts[1], 16)
        name = clean(parts[3])
        if name.startswith("Lanon.") or name.startswith(".Lanon."):
            key = "(anonymous constants)"
        else:
            key = crate_of(name) or "(other: " + name[:40] + ")"
            if modules and key == "cellular_ota":
                m = re.search(r"cellular_ota::([a-z_0-9]+)(?:::([a-z_0-9]+))?", name)
                sub = m.group(1) + ("::" + m.group(2) if m.group(1) in ("ota", "update", "quectel", "client", "at") and m.group(2) and m.group(2)[0].islower() else "")
                key = "cellular_ota::" + sub
        by[key] += size
        syms.append((size, parts[2], name))
    total = sum(by.values())
    for k, v in by.most_common():
        print(f"{v:9d}  {k}")
    print(f"{total:9d}  total (symbols with a size)")
    if top:
        print()
        for size, kind, name in sorted(syms, reverse=True)[:top]:
            print(f"{size:9d} {kind} {name[:150]}")


if __name__ == "__main__":
    main()
