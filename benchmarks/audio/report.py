"""The audio benchmark's outputs: a markdown table, and plots of accuracy against model bytes and
against batch-1 inference latency."""

from __future__ import annotations

NAMES = {"plain": "plain", "narrow": "plain, narrowed", "ws": "WSNet", "ws8": "WSNet, 8-bit", "hashed": "HashNet"}


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"# Audio classification: SoundNet-style network, plain vs WSNet vs HashNet ({meta['when']})", "",
             f"Data: {meta['data']}. {meta['clips']} clips of {meta['seconds']} s at {meta['rate']} Hz, "
             f"{meta['classes']} classes; test folds {meta['test_folds']} of {meta['folds']} (the next fold "
             f"validates){seeds_text(meta)}. {meta['epochs']} epochs, Adam "
             + ("with each variant's lr and weight decay, " if meta.get("recipe_per_variant")
                else f"lr {meta['lr']}, weight decay {meta['weight_decay']}, ") +
             f"batch {meta['batch_size']}; torch {meta['torch']}, {meta['threads']} CPU threads, "
             f"{meta['seconds_total']:.0f} s in all.", "",
             "Accuracy: mean +- std over the test folds. 'target': the compression asked of each compressed "
             "layer (HashNet: the ratio its WSNet twin reached, so both hold the same parameters). 'model "
             "ratio': plain parameters / held. 'bytes ratio': plain float32 bytes / saved bytes. Step: "
             "median training step (forward, backward, Adam) over the folds. Latency: one clip (batch 1) on one CPU "
             "thread, p50 of single calls, variants interleaved; 'x faster': plain's latency / the variant's.", "",
             f"Recipe: time shift up to {meta.get('time_shift', 0):.0%} of a clip; "
             + ("lr and weight decay searched per variant on the first test fold's validation fold "
                f"({meta.get('tune_epochs') or meta['epochs']} epochs per search run; 'lr, wd' column)."
                if meta.get("tuned") else "each variant its own lr and weight decay, the same in all its runs "
                "('lr, wd' column)." if meta.get("recipe_per_variant") else "one lr and weight decay for every variant.")
             + (f" Those lrs and weight decays are what the searches in {', '.join(meta['searched_in'])} chose "
                "(searched on that run's seed; the other runs reuse them)." if meta.get("searched_in") else ""), "",
             "Allocation 'uniform': every compressed layer at the target; 'by_params': the target is the whole "
             "model's ratio, spent by layer size (small layers plain); 'by_params_fast': by_params with the layers "
             "doing 3/4 of the multiply-adds (conv1-conv2) kept at least at sqrt of the target, 'by_params_fast:H' "
             "at least at H (wsnetify's heavy_compactness); '+sumsK': no WSNet layer keeps fewer than K sums of its "
             "input channels (wsnetify's min_channel_sums).", "",
             "| variant | allocation | target | accuracy % | lr, wd | params | model ratio | bytes | bytes ratio | "
             "step ms | latency ms (batch 1, 1 thread) | x faster | per-layer compression |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    several = len(meta.get("policies", [])) > 1
    for r in rows:
        step = f"{r['step_ms_median']:.1f}" if r["step_ms_median"] is not None else "(as WSNet)"
        name = NAMES[r["variant"]] + (f" ({r['policy']})" if several and r.get("policy") else "")
        setting = " / ".join(f"{lr:g}, {wd:g}" for lr, wd in r.get("settings") or [(r["lr"], r["weight_decay"])])
        latency = f"{r['latency_ms']:.2f} | {r['latency_vs_plain']:.2f}" if r.get("latency_ms") else "- | -"
        lines.append(f"| {name} | {r.get('allocation') or '-'} | {r['compression'] or '-'} | {r['accuracy_mean']:.2f} +- "
                     f"{r['accuracy_std']:.2f} | {setting} | {r['params']:,} | {r['model_ratio']:.1f} | {r['bytes']:,} | "
                     f"{r['bytes_ratio']:.1f} | {step} | {latency} | {', '.join(str(c) for c in r['layer_compression']) or '-'} |")
    if meta.get("sources"):
        lines += ["", "Merged from (latency measured again, all rows in one process):"] + [
            f"- {s['file']}: test folds {s['test_folds']}, seed {s['seed']}, allocations {s['allocations']}"
            + (f", variants {s['variants']}" if s.get("variants") else "") for s in meta["sources"]]
    if meta.get("skipped"):
        lines += ["", f"Left out as unreadable ({len(meta['skipped'])}):"] + [f"- {s}" for s in meta["skipped"]]
    if meta.get("ignored"):
        lines += ["", f"Non-audio files ignored: {len(meta['ignored'])} (listed in the JSON)."]
    return "\n".join(lines) + "\n"


def seeds_text(meta: dict) -> str:
    """', seeds [0, 1] (folds drawn again per seed)' for a merge of several seeds, else ''."""
    seeds = meta.get("seeds") or [meta.get("seed", 0)]
    return f", seeds {seeds} (each seed draws its own folders-layout folds and initialisation)" if len(seeds) > 1 else ""


def plot(rows: list[dict], path: str, title: str) -> None:
    """Accuracy against bytes saved (left) and against batch-1 latency (right, where measured)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    axes_of = [("bytes", "model size (bytes saved)")]
    if all(r.get("latency_ms") for r in rows):
        axes_of.append(("latency_ms", "inference latency, batch 1, 1 CPU thread (ms)"))
    fig, axes = plt.subplots(1, len(axes_of), figsize=(6 * len(axes_of), 4), squeeze=False)
    groups = sorted({(r["variant"], r.get("policy"), r.get("allocation")) for r in rows},
                    key=lambda g: (g[0], g[1] or "", g[2] or ""))
    several = len({g[1] for g in groups if g[0] == "ws"}) > 1
    allocations = len({g[2] for g in groups if g[0] == "ws"}) > 1
    for ax, (key, xlabel) in zip(axes[0], axes_of):
        for variant, policy, allocation in groups:
            marker = {"plain": "*", "narrow": "D", "hashed": "s", "ws": "o", "ws8": "^"}[variant]
            pts = sorted((r[key], r["accuracy_mean"], r["accuracy_std"]) for r in rows
                         if (r["variant"], r.get("policy"), r.get("allocation")) == (variant, policy, allocation))
            label = NAMES[variant] + (f" ({policy})" if several and policy else "") + \
                (f" [{allocation}]" if allocations and allocation else "")
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts], marker=marker,
                        capsize=3, label=label, markersize=9 if variant == "plain" else 6)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
