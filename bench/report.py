"""The report: summary figures, targets met or not, Markdown, JSON and a chart."""

import json
import os
import platform
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.infra import ROOT, elapsed
from bench.load import RATIO_CONCURRENCY, ratio
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
    pgbouncer: dict | None = None  # bench/pgbouncer.py: capture-1 through PgBouncer / direct
    bigdata: dict | None = None  # bench/bigdata.py: small / big database, plans
    roundtrip: dict | None = None  # bench/roundtrip.py: app CPU per round trip
    plans: dict | None = None  # bench/plans.py: how often the hot statements are planned
    pgcost: dict | None = None  # bench/pgcost.py: PostgreSQL CPU per capture, part by part


def median_cpu(rounds: list[dict], side: str) -> dict | None:
    """A side's app and PostgreSQL CPU ms per request, the median over the rounds."""
    per_round = [r["cpu_ms_per_request"][side] for r in rounds if "cpu_ms_per_request" in r]
    if not per_round:
        return None
    return {
        part: (statistics.median(values) if None not in values else None)
        for part in ("app_ms", "postgres_ms")
        for values in [[cpu[part] for cpu in per_round]]
    }


def summarize(results: list[dict], scaling: list[dict], contended: dict, rounds: list,
              webhooks: dict, metrics: dict, pgbouncer: dict | None = None,
              bigdata: dict | None = None, plans: dict | None = None) -> dict:  # fmt: skip
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
        "replay_over_baseline_c16": statistics.median(r["replay_ratio"] for r in rounds)
        if rounds and "replay_ratio" in rounds[0]
        else over_baseline("replay", 16),
        "capture_1_p99_over_p50_c16_rounds": [r["tail"] for r in rounds],
        "cpu_ms_per_request_c16": {
            side: median_cpu(rounds, side) for side in ("baseline", "capture-1", "replay")
        },  # fmt: skip
        "latency_1000_over_1": ratio(lat[1000]["latency_ms"], lat[1]["latency_ms"]),
        "queries_identical": len({row["queries"] for row in scaling}) == 1,
        "errors": sum(r["errors"] for r in [*results, *rounds])
        + (pgbouncer["errors"] if pgbouncer else 0),
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
        "pgbouncer_over_direct_c16": pgbouncer["over_direct"] if pgbouncer else None,
        "bigdata_worst_cost_ratio": bigdata["worst_cost_ratio"] if bigdata else None,
        "bigdata_seq_scans": bigdata["seq_scans"] if bigdata else None,
        "replanned_statements": plans["replanned"] if plans else None,
    }


def targets(summary: dict) -> list[tuple[str, bool, str]]:
    tails = summary["capture_1_p99_over_p50_c16_rounds"]
    rows = [
        (
            "capture-1 throughput at concurrency 16 >= 0.65 x baseline",
            (summary["capture_1_over_baseline_c16"] or 0) >= 0.65,
            str(summary["capture_1_over_baseline_c16"]),
        ),
        (
            "capture-1 at concurrency 16: p99 <= 3 x p50 in every ratio round",
            bool(tails) and max(tails) <= 3,
            ", ".join(str(t) for t in tails),
        ),
        (
            "replay throughput at concurrency 16 >= 0.9 x baseline",
            (summary["replay_over_baseline_c16"] or 0) >= 0.9,
            str(summary["replay_over_baseline_c16"]),
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
    if summary.get("replanned_statements") is not None:
        rows.append((
            "the capture's statements run on their cached plans (plans per call <= 0.5)",
            not summary["replanned_statements"],
            "re-planned: " + (", ".join(summary["replanned_statements"]) or "none"),
        ))  # fmt: skip
    if summary["bigdata_worst_cost_ratio"] is not None:
        rows += [
            (
                "2M orders: every scenario costs <= 1.2 x the small database's (small / big rps)",
                summary["bigdata_worst_cost_ratio"] <= 1.2,
                str(summary["bigdata_worst_cost_ratio"]),
            ),
            (
                "2M orders: no statement reads a table of > 10,000 rows with a sequential scan",
                not summary["bigdata_seq_scans"],
                ", ".join(summary["bigdata_seq_scans"]) or "none",
            ),
        ]
    return rows


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
    summary = summarize(m.scenarios, m.scaling, m.contended, m.rounds, m.webhooks, m.metrics,
                        m.pgbouncer, m.bigdata, m.plans)  # fmt: skip
    return {
        "started": started,
        "command": "make bench-smoke" if smoke else "make bench",
        "commit": git_commit(),
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
        "pgbouncer": m.pgbouncer,
        "bigdata": m.bigdata,
        "roundtrip": m.roundtrip,
        "plans": m.plans,
        "pgcost": m.pgcost,
        "ratio_rounds": m.rounds,
        "duration_s": round(elapsed()),
    }


def git_commit() -> str:
    """The commit measured, `+` when the tree had changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=ROOT).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, cwd=ROOT).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "-"
    return head + ("+" if dirty else "")


def write_report(report: dict, out: Path, smoke: bool) -> None:
    """smoke.{json,md}, or latest.{json,md,png} and a dated copy of the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    stem = "smoke" if smoke else "latest"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(report))
    if not smoke:
        chart(report, out / f"{stem}.png")
        shutil.copy(out / f"{stem}.md", out / f"{report['started']}.md")


def append_history(report: dict, out: Path) -> None:
    """One row per full run in history.md: the key ratios, so the trend shows."""
    path = out / "history.md"
    if not path.exists():
        path.write_text(HISTORY_HEADER)
    with path.open("a") as history:
        history.write(history_row(report) + "\n")


HISTORY_HEADER = """# Benchmark history

One row per `make bench`, appended by bench/run.py (the full report of the latest run
is latest.md). Ratios are measured within one run; CPU is ms per request at
concurrency 16, app + PostgreSQL (bench/cpu.py).

| run | commit | capture-1 / baseline c16 | worst p99 / p50 | replay / baseline | \
CPU capture-1 | CPU baseline | webhooks with / without | metrics on / off | \
2M orders worst cost |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|
""".replace("\\\n", "")


def history_row(report: dict) -> str:
    s = report["summary"]
    cpu = s.get("cpu_ms_per_request_c16") or {}

    def both(side):
        c = cpu.get(side)
        return f"{c['app_ms']} + {c['postgres_ms']}" if c else "-"

    tails = s.get("capture_1_p99_over_p50_c16_rounds") or []
    cells = [report["started"], report.get("commit", "-"), s["capture_1_over_baseline_c16"],
             max(tails) if tails else "-", s["replay_over_baseline_c16"], both("capture-1"),
             both("baseline"), s["webhook_with_over_without"], s["metrics_on_over_off"],
             s.get("bigdata_worst_cost_ratio") or "-"]  # fmt: skip
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


# Markdown


def markdown(report: dict) -> str:
    lines = [
        *heading(report),
        *scenario_table(report["scenarios"]),
        *scaling_table(report["items_scaling"]),
        *summary_lines(report["summary"], report["contended"]),
        *rounds_table(report.get("ratio_rounds") or []),
        *roundtrip_lines(report.get("roundtrip")),
        *pgcost_lines(report.get("pgcost")),
        *plans_lines(report.get("plans")),
        *webhook_lines(report.get("webhooks")),
        *metrics_lines(report.get("metrics")),
        *pgbouncer_lines(report.get("pgbouncer")),
        *target_table(report["targets"]),
        *exhausted_note(report["scenarios"]),
        *bigdata_section(report.get("bigdata")),
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
        f"production settings; wrk {settings['seconds']} s per scenario "
        + (f"after a {settings['warmup']} s warm-up" if settings["warmup"] else "without a warm-up")
        + f"; {report['duration_s']} s in all.",
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


def rounds_table(rounds: list[dict]) -> list[str]:
    """Each ratio round: throughput, capture-1's tail, and CPU per request."""
    if not rounds:
        return []

    def cpu(r, side):
        c = (r.get("cpu_ms_per_request") or {}).get(side)
        return f"{c['app_ms']} + {c['postgres_ms']}" if c else "-"

    return table(
        "| round | first | baseline rps | capture-1 rps | ratio | capture-1 p50 / p99 ms | "
        "replay / baseline | CPU ms per request (app + PostgreSQL): baseline | capture-1 | "
        "replay |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        [f"| {n} | {r['first']} | {r['baseline_rps']} | {r['capture_1_rps']} | {r['ratio']} | "
         f"{r['capture_1_p50_ms']:.1f} / {r['capture_1_p99_ms']:.1f} | "
         f"{r.get('replay_ratio', '-')} | {cpu(r, 'baseline')} | {cpu(r, 'capture-1')} | "
         f"{cpu(r, 'replay')} |" for n, r in enumerate(rounds, start=1)],
    )  # fmt: skip


def roundtrip_lines(roundtrip: dict | None) -> list[str]:
    """bench/roundtrip.py: what a round trip costs the app's CPU, by server time."""
    if not roundtrip:
        return []
    by_ms = roundtrip["client_cpu_us_per_round_trip_by_server_ms"]
    return [
        "", "App CPU per round trip to PostgreSQL, by how long the server takes to answer "
        "(bench/roundtrip.py, µs, median of 5 × 200 statements): "
        + ", ".join(f"{ms} ms: {us}" for ms, us in by_ms.items()) + ".",
    ]  # fmt: skip


def pgcost_lines(pgcost: dict | None) -> list[str]:
    """bench/pgcost.py: PostgreSQL's CPU per capture, part by part, under pgbench."""
    if not pgcost:
        return []
    return [
        "", f"PostgreSQL CPU per capture, part by part (bench/pgcost.py: the capture's two "
        f"statements as the app prepares them, sent by pgbench, {pgcost['captures_per_run']} "
        f"captures per run, {pgcost['rounds']} alternating rounds; the app has "
        f"{pgcost['workers']} connections):", "",
        *pgcost_table(pgcost),
    ]  # fmt: skip


def pgcost_table(result: dict) -> list[str]:
    lines = [
        "| statements | clients | PostgreSQL CPU ms a transaction (median) | rounds | per s |",
        "|---|---:|---:|---|---:|",
    ]
    for row in result["rows"]:
        what = (
            "baseline request's statement"
            if row["variant"] == "baseline"
            else (
                f"read + write {row['variant']}" if row["variant"] != "capture" else "read + write"
            )
        )
        lines.append(f"| {what} | {row['clients']} | {row['postgres_ms']} | "
                     f"{', '.join(map(str, row['rounds_ms']))} | {row['tps']} |")  # fmt: skip
    return lines


def plans_lines(plans: dict | None) -> list[str]:
    """bench/plans.py: plans per call of each statement a capture runs."""
    if not plans:
        return []
    return [
        "", f"Plans per call, capture-1 at concurrency 16 ({plans['captures']} captures; "
        "bench/plans.py, pg_stat_statements with track_planning):", "",
        "| statement | calls | plans per call | plan ms | execution ms |",
        "|---|---:|---:|---:|---:|",
        *(f"| `{s['statement']}` | {s['calls']} | {s['plans_per_call']} | {s['plan_ms']} | "
          f"{s['exec_ms']} |" for s in plans["statements"]),
    ]  # fmt: skip


def bigdata_section(big: dict | None) -> list[str]:
    """bench/bigdata.py: the fill, small / big per scenario, and the plans."""
    if not big:
        return []
    tables = ", ".join(f"{name} {t['rows']:,} rows ({t['mb']} MB)"
                       for name, t in big["tables"].items())  # fmt: skip
    fill = sum(step["seconds"] for step in big["fill"].values())

    def each(rounds, key, form="{}"):
        return ", ".join(form.format(r[key]) for r in rounds)

    rows = [f"| {name} | {each(s['rounds'], 'small_rps')} | {each(s['rounds'], 'big_rps')} | "
            f"{each(s['rounds'], 'small_p50_ms', '{:.1f}')} | "
            f"{each(s['rounds'], 'big_p50_ms', '{:.1f}')} | **{s['cost_ratio']}** |"
            for name, s in big["scenarios"].items()]  # fmt: skip
    lines = [
        "", "## Cost as data grows (bench/bigdata.py)", "",
        f"The big database (scale {big['scale']}), filled in SQL in {fill:.0f} s: {tables}.",
        f"Each scenario at concurrency {big['concurrency']}, {big['seconds_per_side']} s per "
        "side, the side that goes first alternating; cost ratio = small rps / big rps.",
        *table("| scenario | small rps | big rps | small p50 ms | big p50 ms | cost ratio |",
               "|---|---|---|---|---|---:|", rows),
        "", "Sequential scans on the big database, of tables of more than 10,000 rows: "
        f"{', '.join(big['seq_scans']) or 'none'}; of configuration tables of a few rows "
        f"(the right plan there): {', '.join(big.get('small_table_seq_scans', [])) or 'none'}.",
        *admin_lines(big.get("admin")),
        "", "### The plans (bench/explain.py; generic = the plan of a prepared statement)",
    ]  # fmt: skip
    for plan in big["plans"]:
        lines += ["", f"**{plan['request']}**: `{plan['sql'][:160]}…`", "",
                  "```", plan["generic"].rstrip(), "```"]  # fmt: skip
        if plan["custom"] != plan["generic"]:
            lines += ["custom plan (the request's values):",
                      "```", plan["custom"].rstrip(), "```"]  # fmt: skip
    return lines


def admin_lines(admin: list[dict] | None) -> list[str]:
    if not admin:
        return []
    rows = [f"| `{a['page']}` | {a['user']} | {a['small_ms']} | {a['big_ms']} | "
            f"{a['cost_ratio']} | {a['statements']} | {a['slowest_ms']} |"
            for a in admin]  # fmt: skip
    return [
        "", "### The admin lists (bench/admin_lists.py)", "",
        "Each page loaded through the whole admin in-process, median of five after a warm "
        "load; cost ratio = big ms / small ms; statements and the slowest on the big one.",
        *table("| page | user | small ms | big ms | cost ratio | statements | slowest ms |",
               "|---|---|---:|---:|---:|---:|---:|", rows),
    ]  # fmt: skip


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
        f"**{webhooks['with_over_without']}** (median of rounds, rps {rounds}); subscribed "
        f"with the workers paused / without (what the subscription costs the capture "
        f"itself): {webhooks.get('paused_over_without')}{sustained}; "
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


def pgbouncer_lines(pooled: dict | None) -> list[str]:
    """capture-1 through PgBouncer / direct (bench/pgbouncer.py), when measured."""
    if pooled is None:
        return []
    rps = [f"{r['pgbouncer_rps']}/{r['direct_rps']}" for r in pooled["rounds"]]
    setup = "deploy/pgbouncer/pgbouncer.ini, DB_PREPARED_STATEMENTS=0, timeouts on the role"
    return [f"- PgBouncer in transaction mode (bench/pgbouncer.py, {setup}): capture-1 "
            f"through PgBouncer / direct at concurrency {pooled['concurrency']}: "
            f"**{pooled['over_direct']}** (median of rounds of {pooled['seconds_per_side']} s "
            f"per side, rps {', '.join(rps)}); of which losing the prepared statements "
            f"(direct with DB_PREPARED_STATEMENTS=0 / direct): "
            f"{pooled.get('unprepared_over_prepared')}"]  # fmt: skip


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
        "rounds": [{"round": n, **r} for n, r in enumerate(rounds, start=1)],
        "ratios": [r["ratio"] for r in rounds],
        "median": statistics.median(r["ratio"] for r in rounds),
        "errors": sum(r["errors"] for r in rounds),
    }
