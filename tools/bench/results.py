# SPDX-License-Identifier: GPL-2.0
"""Shared by the bench scripts: add a section to bench-results/results.md."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def append_section(lines):
    out = os.path.join(ROOT, "bench-results", "results.md")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
