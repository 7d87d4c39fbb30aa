"""The report: summary figures, targets met or not, Markdown, JSON and a chart."""

import json
import os
import platform
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path

from bench.infra import elapsed
from bench.load import RATIO_CONCURRENCY, ratio, round_order
from bench.seeding import CONCURRENCY


@dataclass
class Measurements:
    scenarios: list[dict]  # the table: one row per scenario and concurrency
    contended: dict  # per concurrency ("c1", "c16"): what the contended run left behind
    rounds: list[dict]  # the alternating ratio rounds
    scaling: list[dict]  # one capture, by its number of items
    profile: str  # pyinstrument's text, "" when not profiled
    fast_paths: list[dict]  # bench/fast_paths.py's rows, [] when not measured
    webhooks: dict  # bench/webhooks.py: with/without a subscription, lag, drain
    metrics: dict  # bench/metrics_cost.py: capture-1 with metrics on / off


def summarize(results: list[dict], scaling: list[dict], contended: dict, rounds: list,
              webhooks: dict, metrics: dict) -> dict:  # fmt: skip
    by = {(r["scenario"], r["concurrency"]): r for r in results}
    lat = {row["items"]: row for row in scaling}

    def over_baseline(scenario, concurrency):
        return ratio(by[(scenario, concurrency)]["rps"], by[("baseline", concurrency)]["rps"])

    return {
        "capture_1_over_baseline_c16": statistics.median(r["ratio"] for r in rounds)
        if rounds
        else over_baseline("capture-1", 16),
        "capture_1_over_baseline_c16_rounds": [r["ratio"] for r in rounds],
        "capture_1_over_baseline_c16_table": over_baseline("capture-1", 16),
        "capture_1_over_baseline_c1": over_baseline("capture-1", 1),
        "replay_over_baseline_c16": over_baseline("replay", 16),
        "latency_1000_over_1": ratio(lat[1000]["latency_ms"], lat[1]["latency_ms"]),
        "queries_identical": len({row["queries"] for row in scaling}) == 1,
        "errors": sum(r["errors"] for r in results) + sum(r["errors"] for r in rounds),
        "contended_exactly_once": all(
            c["audit_rows"] == c["distinct_items"] == c["captured_items"]
            for c in contended.values()
        ),
        "contended_matches_successes": all(
            c["successes"] <= c["captured_items"] <= c["successes"] + c["concurrency"]
            for c in contended.values()
        ),
        "webhook_with_over_without": webhooks["with_over_without"],
        "webhook_lag_p99_ms": webhooks["lag"]["p99_ms"],
        "webhook_drain_s": webhooks["drain_s"],
        "webhooks_all_delivered": webhooks["all_delivered"],
        "metrics_on_over_off": metrics["on_over_off"],
    }


def targets(summary: dict) -> list[tuple[str, bool, str]]:
    return [
        (
            "capture-1 throughput at concurrency 16 >= 0.5 x baseline",
            (summary["capture_1_over_baseline_c16"] or 0) >= 0.5,
            str(summary["capture_1_over_baseline_c16"]),
        ),
        (
            "latency(1,000 items) / latency(1 item) <= 10",
            (summary["latency_1000_over_1"] or 99) <= 10,
            str(summary["latency_1000_over_1"]),
        ),
        ("SQL query count identical at 1, 10, 100, 1,000 items", summary["queries_identical"], ""),
        ("zero errors in every scenario", summary["errors"] == 0, str(summary["errors"])),
        (
            "contended: every item captured exactly once",
            summary["contended_exactly_once"] and summary["contended_matches_successes"],
            "",
        ),
        (
            "capture-1 with one active webhook subscription >= 0.9 x without",
            (summary["webhook_with_over_without"] or 0) >= 0.9,
            str(summary["webhook_with_over_without"]),
        ),
        (
            "webhook delivery lag p99 <= 2 s at the capture-1 concurrency-16 rate",
            (summary["webhook_lag_p99_ms"] or 1e9) <= 2000,
            f"{summary['webhook_lag_p99_ms']} ms",
        ),
        (
            "webhook backlog drained within 10 s of the load stopping",
            summary["webhook_drain_s"] is not None and summary["webhook_drain_s"] <= 10,
            f"{summary['webhook_drain_s']} s",
        ),
        ("every captured event delivered", summary["webhooks_all_delivered"], ""),
        (
            "capture-1 with metrics on >= 0.97 x metrics off",
            (summary["metrics_on_over_off"] or 0) >= 0.97,
            str(summary["metrics_on_over_off"]),
        ),
    ]


def hard_failure(summary: dict) -> bool:
    """What makes the run exit 1 (a missed throughput or latency target does not)."""
    return (
        summary["errors"] != 0
        or not summary["queries_identical"]
        or not summary["contended_exactly_once"]
        or not summary["webhooks_all_delivered"]
    )


def build_report(m: Measurements, *, started: str, smoke: bool, seconds: int,
                 warmup: int, workers: int) -> dict:  # fmt: skip
    summary = summarize(m.scenarios, m.scaling, m.contended, m.rounds, m.webhooks, m.metrics)
    return {
        "started": started,
        "command": "make bench-smoke" if smoke else "make bench",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "workers": workers},
        "settings": {"seconds": seconds, "warmup": warmup},
        "scenarios": m.scenarios,
        "items_scaling": m.scaling,
        "contended": m.contended,
        "summary": summary,
        "targets": targets(summary),
        "profile": m.profile,
        "fast_paths": m.fast_paths,
        "webhooks": m.webhooks,
        "metrics": m.metrics,
        "ratio_rounds": m.rounds,
        "duration_s": round(elapsed()),
    }


def write_report(report: dict, out: Path, smoke: bool) -> None:
    """smoke.{json,md}, or latest.{json,md,png} and a dated copy of the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    stem = "smoke" if smoke else "latest"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(report))
    if not smoke:
        chart(report, out / f"{stem}.png")
        shutil.copy(out / f"{stem}.md", out / f"{report['started']}.md")


# Markdown


def markdown(report: dict) -> str:
    lines = [
        *heading(report),
        *scenario_table(report["scenarios"]),
        *scaling_table(report["items_scaling"]),
        *summary_lines(report["summary"], report["contended"]),
        *webhook_lines(report.get("webhooks")),
        *metrics_lines(report.get("metrics")),
        *target_table(report["targets"]),
        *exhausted_note(report["scenarios"]),
        *fast_paths_table(report.get("fast_paths")),
        *profile_section(report.get("profile")),
    ]
    return "\n".join(lines) + "\n"


def heading(report: dict) -> list[str]:
    machine, settings = report["machine"], report["settings"]
    return [
        f"# Benchmark {report['started']}",
        "",
        f"`{report['command']}` on {machine['cpus']} CPUs, "
        f"{machine['platform']}; gunicorn {machine['workers']} sync workers, "
        f"production settings; wrk {settings['seconds']} s per scenario after a "
        f"{settings['warmup']} s warm-up; {report['duration_s']} s in all.",
    ]


def table(header: str, rule: str, rows: list[str]) -> list[str]:
    return ["", header, rule, *rows]


def scenario_table(scenarios: list[dict]) -> list[str]:
    return table(
        "| scenario | concurrency | requests/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
        [
            f"| {r['scenario']} | {r['concurrency']} | {r['rps']} | {r['p50_ms']:.1f} | "
            f"{r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} |"
            for r in scenarios
        ],
    )


def scaling_table(scaling: list[dict]) -> list[str]:
    return table(
        "| items-scaling: items | latency ms (median) | SQL statements |",
        "|---:|---:|---:|",
        [f"| {row['items']} | {row['latency_ms']} | {row['queries']} |" for row in scaling],
    )


def summary_lines(s: dict, contended: dict) -> list[str]:
    return [
        "",
        "- capture-1 / baseline throughput at concurrency 16: "
        f"**{s['capture_1_over_baseline_c16']}** (median of the alternating rounds "
        f"{', '.join(str(r) for r in s['capture_1_over_baseline_c16_rounds'])}; "
        f"the table's runs: {s['capture_1_over_baseline_c16_table']}); "
        f"at concurrency 1: {s['capture_1_over_baseline_c1']}",
        f"- replay / baseline throughput at concurrency 16: {s['replay_over_baseline_c16']}",
        f"- latency(1,000 items) / latency(1 item): **{s['latency_1000_over_1']}**",
        f"- contended: {json.dumps(contended)}",
    ]


def target_table(rows) -> list[str]:
    return table(
        "| target | met | value |",
        "|---|---|---|",
        [f"| {name} | {'yes' if met else '**no**'} | {value} |" for name, met, value in rows],
    )


def exhausted_note(scenarios: list[dict]) -> list[str]:
    short = [f"{r['scenario']} at {r['concurrency']}" for r in scenarios
             if r["error_detail"]["bodies_exhausted"]]  # fmt: skip
    if not short:
        return []
    return ["", f"Ran out of seeded orders (requests/s understated): {', '.join(short)}."]


def webhook_lines(webhooks: dict | None) -> list[str]:
    if not webhooks:
        return []
    lag = webhooks["lag"]
    rounds = ", ".join(f"{r['with_rps']}/{r['without_rps']}" for r in webhooks["rounds"])
    load = webhooks.get("sustained")
    sustained = (f"; then {load['seconds']} s at {load['rps']} captures/s, subscribed"
                 if load else "")  # fmt: skip
    return [
        "",
        f"- webhooks (bench/webhooks.py, {lag['events']} events, three workers, nginx as the "
        f"receiver): capture-1 with / without one active subscription at concurrency 16: "
        f"**{webhooks['with_over_without']}** (median of rounds, rps {rounds}){sustained}; "
        f"worker CPU {webhooks.get('worker_cpu_ms_per_event')} ms per event; delivery lag "
        f"from the capture p50 {lag['p50_ms']} ms, p99 {lag['p99_ms']} ms; backlog drained "
        f"{webhooks['drain_s']} s after the load stopped; {lag['received']} of "
        f"{lag['events']} received",
    ]


def metrics_lines(metrics: dict | None) -> list[str]:
    if not metrics:
        return []
    rounds = ", ".join(f"{r['on_rps']}/{r['off_rps']}" for r in metrics["rounds"])
    return [
        f"- metrics (bench/metrics_cost.py): capture-1 with / without metrics at concurrency "
        f"16: **{metrics['on_over_off']}** (median of rounds, rps {rounds})"
    ]


def fast_paths_table(rows: list[dict] | None) -> list[str]:
    if not rows:
        return []
    lines = ["", "## What each fast path saves (bench/fast_paths.py, in-process, median)", "",
             "| fast path | ms per capture with it | without it | saves |",
             "|---|---:|---:|---:|"]  # fmt: skip
    for row in rows:
        lines.append(f"| {row['fast_path']} | {row['on_ms']} | {row['off_ms']} | "
                     f"{row['saving_pct']}% |")  # fmt: skip
    return lines


def profile_section(profile: str | None) -> list[str]:
    if not profile:
        return []
    return [
        "",
        "## Profile (pyinstrument, in-process captures)",
        "",
        "```",
        profile.rstrip(),
        "```",
    ]


# Chart


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    throughput_bars(left, report["scenarios"])
    scaling_curve(right, report["items_scaling"])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def throughput_bars(axes, scenarios: list[dict]) -> None:
    names = list(dict.fromkeys(r["scenario"] for r in scenarios))
    width = 0.38
    for offset, concurrency in zip((-width / 2, width / 2), CONCURRENCY, strict=True):
        rows = {r["scenario"]: r for r in scenarios if r["concurrency"] == concurrency}
        axes.bar(
            [i + offset for i in range(len(names))],
            [rows[n]["rps"] for n in names],
            width,
            label=f"concurrency {concurrency}",
        )
    axes.set_xticks(range(len(names)), names, rotation=20)
    axes.set_ylabel("requests/s")
    axes.set_title("Throughput")
    axes.legend()


def scaling_curve(axes, scaling: list[dict]) -> None:
    axes.plot([row["items"] for row in scaling], [row["latency_ms"] for row in scaling], marker="o")
    axes.set_xscale("log")
    axes.set_xlabel("items in one capture")
    axes.set_ylabel("latency ms (median)")
    axes.set_title("One capture, by item count")


# --ratio-only


def ratio_report(rounds: list[dict], seconds: int) -> dict:
    """The rounds with their order and rps pair, their ratios, and the median."""
    return {
        "concurrency": RATIO_CONCURRENCY,
        "seconds_per_side": seconds,
        "rounds": [
            {"round": n, "first": round_order(n)[0], **r} for n, r in enumerate(rounds, start=1)
        ],
        "ratios": [r["ratio"] for r in rounds],
        "median": statistics.median(r["ratio"] for r in rounds),
        "errors": sum(r["errors"] for r in rounds),
    }
