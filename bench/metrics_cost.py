"""What the metrics cost: capture-1 at concurrency 16 against two app servers started
for this, one with metrics on and one with METRICS_ENABLED=0, in alternating rounds
(drift of this shared machine favours neither side).

Both are fresh: measured against the benchmark's main server, which had served every
scenario before, a fresh server with metrics *on* was 6% faster too (three fresh
servers, on / off / on, six alternating rounds of 6 s, a `/tmp` script: off / on
0.998, the two "on" servers 0.94 apart), which made metrics look dearer than they are
(0.89 to 0.90)."""

import statistics

from bench.infra import app_server, log
from bench.load import RATIO_CONCURRENCY, Server, ratio, warm_servers, wrk


def metrics_cost(token: str, env: dict, bodies: list[dict], seconds: int, *, warmup: int) -> dict:
    """`bodies`: per round, a bodies file for each side ("on", "off"); `warmup`: seconds
    of each fresh server's baseline first."""
    rounds = []
    with app_server(env) as base_on, app_server({**env, "METRICS_ENABLED": "0"}) as base_off:
        servers = {"on": Server(base_on, token), "off": Server(base_off, token)}
        warm_servers(servers.values(), token, warmup)
        for number, files in enumerate(bodies, start=1):
            order = ("on", "off") if number % 2 else ("off", "on")
            rps = {side: wrk(servers[side].capture_url, connections=RATIO_CONCURRENCY,
                             seconds=seconds, token=token, bodies=files[side])["rps"]
                   for side in order}  # fmt: skip
            rounds.append({"on_rps": rps["on"], "off_rps": rps["off"],
                           "ratio": ratio(rps["on"], rps["off"])})  # fmt: skip
            log(f"metrics round {number}: on {rps['on']} rps, off {rps['off']} rps")
    return {"rounds": rounds, "on_over_off": statistics.median(r["ratio"] for r in rounds)}
