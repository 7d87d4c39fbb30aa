"""`make bench` / `make bench-smoke`: where a capture's time goes, measured.

Starts PostgreSQL (a throwaway cluster, unless DATABASE_URL is set) and the app
under gunicorn with the production settings and `make run`'s worker count, seeds
orders through `manage.py import_orders`, drives load with wrk from a separate
process (bench/requests.lua gives each request its own order and items), and writes
a report to bench/results/ (Markdown, JSON, PNG). Every figure that matters is a
ratio measured in the same run: this machine is shared and noisy.

Exit status 1 when a scenario had errors, a contended item was captured twice, or
the query count of a capture depends on its number of items.

--ratio-only, for A/B measurements: only the alternating ratio rounds (capture-1 /
baseline throughput at concurrency 16), printed as JSON; no report is written.
--fast-paths-only: only bench/fast_paths.py, what each fast path saves, as JSON.
--webhooks-only: only bench/webhooks.py's rounds (without a subscription, with one, and
with one while the workers are paused), as JSON.
--pg-cost-only: only bench/pgcost.py, PostgreSQL's CPU per capture part by part under
pgbench (no app in the way), as JSON.

The modules, in the order main() uses them: bench/infra.py (database, app server),
bench/seeding.py (orders and request bodies), bench/load.py (wrk scenarios, ratio
rounds), bench/scaling.py (one capture by item count, profile), bench/pgcost.py
(PostgreSQL's share, under pgbench), bench/report.py."""

import argparse
import json
import re
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import pgcost  # noqa: E402
from bench.bigdata import ROUNDS as BIGDATA_ROUNDS  # noqa: E402
from bench.bigdata import measure_bigdata  # noqa: E402
from bench.cpu import CpuMeter  # noqa: E402
from bench.infra import (  # noqa: E402
    SESSIONS,
    api_token,
    app_env,
    app_server,
    database,
    log,
    migrate,
    workers,
)
from bench.load import Replay, Server, ratio_rounds, run_scenarios, warm_ratio_sides  # noqa: E402
from bench.metrics_cost import metrics_cost  # noqa: E402
from bench.pgbouncer import measure_pgbouncer, pgbouncer_bodies  # noqa: E402
from bench.plans import plans_per_call  # noqa: E402
from bench.report import (  # noqa: E402
    Measurements,
    append_history,
    build_report,
    hard_failure,
    markdown,
    ratio_report,
    write_report,
)
from bench.roundtrip import measure_roundtrip  # noqa: E402
from bench.scaling import fast_paths, items_scaling, profile  # noqa: E402
from bench.seeding import Seeds, fast_path_bodies, seed_plan  # noqa: E402
from bench.webhooks import measure_webhooks  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# The capture-1 / baseline throughput ratio at concurrency 16 is also measured in
# rounds that alternate the two, so drift of this shared machine between two runs
# cannot masquerade as a difference: the report gives the median round.
RATIO_ROUNDS = 3
# A minute of capture-1 at concurrency 16 with a webhook subscription (full runs).
SUSTAINED_SECONDS = 60


@dataclass(frozen=True)
class Settings:
    fast_paths_only: bool
    bigdata_only: bool
    webhooks_only: bool
    pg_cost_only: bool
    bigdata_scale: float  # 1.0: 2 million orders (bench/bigdata.py)
    smoke: bool
    ratio_only: bool
    seconds: int  # measured seconds per scenario; a ratio round runs half of it per side
    warmup: int  # unmeasured seconds before each scenario
    rounds: int  # alternating ratio rounds
    repeats: int  # timed captures per size in items-scaling
    out: Path

    @property
    def round_seconds(self) -> int:
        return max(1, self.seconds // 2)

    @property
    def profile_orders(self) -> int:
        return 40 if self.smoke else 300


def _seconds(least: int):
    """An argparse type: whole seconds, `least` or more (wrk never ends for `-d -1s`)."""

    def parse(text: str) -> int:
        if not re.fullmatch("-?[0-9]+", text) or int(text) < least:
            raise argparse.ArgumentTypeError(f"whole seconds, {least} or more: not {text!r}")
        return int(text)

    return parse


def parse_args(argv=None) -> Settings:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="short run for CI")
    parser.add_argument("--seconds", type=_seconds(1), help="measured seconds per scenario")
    parser.add_argument("--warmup", type=_seconds(0), help="warm-up seconds per scenario (0: none)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--ratio-only", action="store_true", help="only the ratio rounds: JSON out, no report"
    )
    parser.add_argument("--rounds", type=int, help=f"ratio rounds (default {RATIO_ROUNDS})")
    parser.add_argument(
        "--fast-paths-only",
        action="store_true",
        help="only bench/fast_paths.py (in-process, no server): JSON out, no report",
    )
    parser.add_argument(
        "--bigdata-only",
        action="store_true",
        help="only bench/bigdata.py (small against big database): JSON out, no report",
    )
    parser.add_argument(
        "--webhooks-only",
        action="store_true",
        help="only bench/webhooks.py's rounds (with, without, paused): JSON out, no report",
    )
    parser.add_argument(
        "--pg-cost-only",
        action="store_true",
        help="only bench/pgcost.py (PostgreSQL CPU per capture under pgbench): JSON out",
    )
    parser.add_argument(
        "--bigdata-scale", type=float, default=1.0,
        help="the big database's size, 1.0 = 2 million orders (for trying the script out)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    rounds = args.rounds
    if rounds is None:
        rounds = 0 if args.smoke and not args.ratio_only else RATIO_ROUNDS
    if args.ratio_only and rounds < 1:
        parser.error("--ratio-only needs --rounds 1 or more")
    return Settings(
        fast_paths_only=args.fast_paths_only,
        bigdata_only=args.bigdata_only,
        webhooks_only=args.webhooks_only,
        pg_cost_only=args.pg_cost_only,
        bigdata_scale=args.bigdata_scale,
        smoke=args.smoke,
        ratio_only=args.ratio_only,
        seconds=args.seconds or (1 if args.smoke else 8),
        # The smoke run checks that every part runs clean, not how fast: no warm-ups.
        warmup=args.warmup if args.warmup is not None else (0 if args.smoke else 2),
        rounds=rounds,
        repeats=1 if args.smoke else 15,
        out=args.out,
    )


def main() -> int:
    settings = parse_args()
    if shutil.which("wrk") is None:
        log("wrk is not installed: `make bench` installs it (Debian: apt-get install wrk)")
        return 2
    if settings.fast_paths_only:
        return fast_paths_only()
    if settings.bigdata_only:
        return bigdata_only(settings)
    if settings.webhooks_only:
        return webhooks_only(settings)
    if settings.pg_cost_only:
        return pg_cost_only()
    return ratio_only(settings) if settings.ratio_only else full_run(settings)


def full_run(s: Settings) -> int:
    """Every scenario, the ratio rounds, items scaling and the profile; the report."""
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    with migrated_database() as (env, seeds):
        plan = seed_plan(
            seeds,
            seconds=s.seconds,
            warmup=s.warmup,
            ratio_rounds=s.rounds,
            ratio_seconds=s.round_seconds,
            profile_orders=s.profile_orders,
        )
        paths_bodies = None if s.smoke else fast_path_bodies(seeds)
        webhook_bodies = seeds.sided_bodies(
            max(1, s.rounds), s.round_seconds, ("without", "with", "paused")
        )
        metrics_bodies = seeds.sided_bodies(max(1, s.rounds), s.round_seconds, ("on", "off"))
        pooled_bodies = pgbouncer_bodies(seeds, max(1, s.rounds), s.round_seconds)
        plans_bodies = seeds.capture_bodies("RATIO", 16, 1, s.round_seconds, tag="plans")
        sustained_bodies = (
            None
            if s.smoke
            else seeds.capture_bodies("RATIO", 16, 1, SUSTAINED_SECONDS, tag="sustained")
        )
        token = api_token(env)
        with app_server(env) as base:
            server = Server(base, token)
            database_url = env["DATABASE_URL"]
            scenarios, contended = run_scenarios(
                server, plan, database_url, warmup=s.warmup, seconds=s.seconds
            )
            replay = Replay(plan.replay_bodies, plan.replay_key)
            meter = CpuMeter(SESSIONS[base], database_url)
            rounds = ratio_rounds(server, plan.ratio, s.round_seconds, replay, meter)
            plans = plans_per_call(server, database_url, plans_bodies, s.round_seconds)
            roundtrip = None if s.smoke else measure_roundtrip(database_url)
            pooled = measure_pgbouncer(server, env, pooled_bodies, s.round_seconds, warmup=s.warmup)
            webhooks = measure_webhooks(server, env, webhook_bodies, s.round_seconds,
                                        sustained_bodies, SUSTAINED_SECONDS)  # fmt: skip
            metrics = metrics_cost(token, env, metrics_bodies, s.round_seconds, warmup=s.warmup)
            scaling = items_scaling(server, seeds, database_url, s.repeats)
            profile_text = "" if s.smoke else profile(env, plan.profile_bodies, token)
            bigdata = None if s.smoke else measure_bigdata(
                env, seeds, server, rounds=BIGDATA_ROUNDS, seconds=s.round_seconds,
                scale=s.bigdata_scale)  # fmt: skip
        paths = [] if s.smoke else fast_paths(env, paths_bodies, token)
        pgcost = None if s.smoke else measure_pgcost(env, seeds, token)
    measured = Measurements(scenarios, contended, rounds, scaling, profile_text, paths, webhooks,
                            metrics, pooled, bigdata, roundtrip, plans, pgcost)  # fmt: skip
    report = build_report(measured, started=started, smoke=s.smoke, seconds=s.seconds,
                          warmup=s.warmup, workers=workers())  # fmt: skip
    write_report(report, s.out, s.smoke)
    if not s.smoke:
        append_history(report, s.out)
    print(markdown(report))
    return 1 if hard_failure(report["summary"]) else 0


def ratio_only(s: Settings) -> int:
    """A warm-up of both sides (none for `--warmup 0`, as with `--smoke`), then the
    alternating ratio rounds; JSON on stdout."""
    with migrated_database() as (env, seeds):
        warm_bodies = s.warmup and seeds.capture_bodies("RATIO", 16, 1, s.warmup, tag="warm")
        round_bodies = seeds.ratio_bodies(s.rounds, s.round_seconds)
        token = api_token(env)
        with app_server(env) as base:
            server = Server(base, token)
            if warm_bodies:
                warm_ratio_sides(server, warm_bodies, s.warmup)
            meter = CpuMeter(SESSIONS[base], env["DATABASE_URL"])
            rounds = ratio_rounds(server, round_bodies, s.round_seconds, meter=meter)
    result = ratio_report(rounds, s.round_seconds)
    print(json.dumps(result, indent=2))
    return 1 if result["errors"] else 0


def bigdata_only(s: Settings) -> int:
    """bench/bigdata.py alone, against a fresh small database; JSON on stdout."""
    with migrated_database() as (env, seeds):
        seeds.orders(f"FIRST{seeds.run_id}", 1, 1)  # its channel, granted to the API user
        token = api_token(env)
        with app_server(env) as base:
            result = measure_bigdata(env, seeds, Server(base, token), rounds=max(1, s.rounds),
                                     seconds=s.round_seconds, scale=s.bigdata_scale)  # fmt: skip
    print(json.dumps(result, indent=2))
    return 1 if any(scenario["errors"] for scenario in result["scenarios"].values()) else 0


def webhooks_only(s: Settings) -> int:
    """bench/webhooks.py's alternating rounds alone; JSON on stdout."""
    with migrated_database() as (env, seeds):
        rounds = max(1, s.rounds)
        bodies = seeds.sided_bodies(rounds, s.round_seconds, ("without", "with", "paused"))
        token = api_token(env)
        with app_server(env) as base:
            result = measure_webhooks(Server(base, token), env, bodies, s.round_seconds)
    print(json.dumps(result, indent=2))
    return 0 if result["all_delivered"] else 1


def pg_cost_only() -> int:
    """bench/pgcost.py alone; JSON on stdout."""
    with migrated_database() as (env, seeds):
        seeds.orders(f"FIRST{seeds.run_id}", 1, 1)  # its channel, granted to the API user
        print(json.dumps(measure_pgcost(env, seeds, api_token(env)), indent=2))
    return 0


def measure_pgcost(env: dict, seeds: Seeds, token: str) -> dict:
    """bench/pgcost.py against copies of a newly imported one-item order, in the
    channel the API user of `token` was granted."""
    log("pgcost: the capture's statements under pgbench, part by part")
    template = seeds.orders(f"PGCOST{seeds.run_id}", 1, 1)[0]
    return pgcost.measure(env, template, token)


def fast_paths_only() -> int:
    """bench/fast_paths.py alone; JSON on stdout."""
    with migrated_database() as (env, seeds):
        bodies = fast_path_bodies(seeds)
        print(json.dumps(fast_paths(env, bodies, api_token(env)), indent=2))
    return 0


@contextmanager
def migrated_database():
    """A work directory for bodies files and a migrated database: yields (env, Seeds)."""
    with (
        tempfile.TemporaryDirectory(prefix="omnitron-bench-") as workdir,
        database() as database_url,
    ):
        env = app_env(database_url)
        log("migrating and seeding")
        migrate(env)
        with Seeds(env, Path(workdir)) as seeds:
            yield env, seeds


if __name__ == "__main__":
    sys.exit(main())
