"""Where the accuracy studies write: <out>/<name>_<tag>.json (meta + rows) and .md (the table)."""

from __future__ import annotations

import json
import os


def write(out: str, name: str, tag: str, meta: dict, rows: list, table: str) -> str:
    stem = os.path.join(out, f"{name}_{tag}")
    os.makedirs(out, exist_ok=True)
    with open(stem + ".json", "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    with open(stem + ".md", "w") as f:
        f.write(table)
    print(table)
    return stem
