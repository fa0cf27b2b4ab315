"""Budget allocation names as the benchmarks take them on the command line: wsnetify / hashify's
`allocate` names (wsnet_ext._allocate.ALLOCATIONS), 'by_params_fast:H', which floors the layers
doing most multiply-adds at H (heavy_compactness=H), and any of them followed by '+sumsK', which
keeps at least K channel sums in every WSNet layer (wsnetify's min_channel_sums=K; HashNet has no
channel sums and ignores it)."""

from __future__ import annotations

from wsnet_ext._allocate import ALLOCATIONS


SUMS = "+sums"


def allocation_kwargs(allocation: str) -> dict:
    """The model factories' keywords of an allocation name (wsnet_ext.models: allocate,
    heavy_compactness, min_channel_sums)."""
    rest, plus, sums = allocation.partition(SUMS)
    name, colon, heavy = rest.partition(":")
    return {"allocate": name, **({"heavy_compactness": float(heavy)} if colon else {}),
            **({"min_channel_sums": int(sums)} if plus else {})}


def allocation_ok(spec: str) -> bool:
    """An allocation name, by_params_fast:H with a number H >= 1, either followed by +sumsK with
    an integer K >= 1."""
    try:
        how = allocation_kwargs(spec)
    except ValueError:
        return False
    heavy, sums = how.get("heavy_compactness"), how.get("min_channel_sums", 1)
    return (how["allocate"] in ALLOCATIONS and sums >= 1
            and (heavy is None or (how["allocate"] == "by_params_fast" and heavy >= 1)))


def parse_allocations(text: str) -> list[str]:
    """The comma-separated allocations of an --allocate option; ValueError naming the bad ones."""
    names = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in names if not allocation_ok(x)]
    if not names or bad:
        raise ValueError(f"--allocate expects names of {ALLOCATIONS} (by_params_fast:H with a number H >= 1; "
                         f"either followed by +sumsK, an integer K >= 1), got {text!r}")
    return names
