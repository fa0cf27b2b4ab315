"""Budget allocation names as the benchmarks take them on the command line: wsnetify / hashify's
`allocate` names (wsnet_ext._allocate.ALLOCATIONS), and 'by_params_fast:H', which floors the
layers doing most multiply-adds at H (heavy_compactness=H)."""

from __future__ import annotations

from wsnet_ext._allocate import ALLOCATIONS


def allocation_kwargs(allocation: str) -> dict:
    """wsnetify / hashify keywords of an allocation name."""
    name, colon, heavy = allocation.partition(":")
    return {"allocate": name, **({"heavy_compactness": float(heavy)} if colon else {})}


def allocation_ok(spec: str) -> bool:
    """An allocation name, or by_params_fast:H with a number H >= 1."""
    try:
        how = allocation_kwargs(spec)
    except ValueError:
        return False
    heavy = how.get("heavy_compactness")
    return how["allocate"] in ALLOCATIONS and (heavy is None or (how["allocate"] == "by_params_fast" and heavy >= 1))


def parse_allocations(text: str) -> list[str]:
    """The comma-separated allocations of an --allocate option; ValueError naming the bad ones."""
    names = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in names if not allocation_ok(x)]
    if not names or bad:
        raise ValueError(f"--allocate expects names of {ALLOCATIONS} (by_params_fast:H with a number H >= 1), "
                         f"got {text!r}")
    return names
