"""Where a benchmark runs and where its results go: the devices --device names, the results tag,
<stem>.json (the data) and <stem>.md (the table, printed too)."""

from __future__ import annotations

import json


def write_json_and_markdown(stem: str, payload: dict, table: str) -> None:
    with open(stem + ".json", "w") as out:
        json.dump(payload, out, indent=1)
    with open(stem + ".md", "w") as out:
        out.write(table)
    print(table)
    print(f"wrote {stem}.json, .md")


def devices_for(choice: str) -> list:
    """The devices a benchmark's --device cpu|cuda|all names: 'all' takes CUDA only where a GPU is
    present and wsnet_ext's CUDA kernels are loaded; 'cuda' without them is an error."""
    import torch

    import wsnet_ext

    devices = [torch.device("cpu")] if choice in ("cpu", "all") else []
    if choice in ("cuda", "all") and torch.cuda.is_available() and wsnet_ext.cuda_loaded():
        devices.append(torch.device("cuda"))
    elif choice == "cuda":
        raise SystemExit("--device cuda: no CUDA device, or wsnet_ext has no CUDA kernels loaded")
    return devices


def results_tag(tag: str | None, quick: bool) -> str:
    """--tag, else 'quick' for a smoke run, else today's date."""
    import datetime

    return tag or ("quick" if quick else datetime.date.today().isoformat())
