"""What the metrics cost: capture-1 at concurrency 16 against the app with metrics on
and against a second one with METRICS_ENABLED=0, in alternating rounds (drift of this
shared machine favours neither side)."""

import statistics

from bench.infra import app_server, log
from bench.load import RATIO_CONCURRENCY, Server, ratio, wrk


def metrics_cost(server: Server, env: dict, bodies: list[dict], seconds: int) -> dict:
    """`bodies`: per round, a bodies file for each side ("on", "off")."""
    rounds = []
    with app_server({**env, "METRICS_ENABLED": "0"}) as base_off:
        off = Server(base_off, server.token)
        # A fresh server's first requests are slow: warm it as the other one is.
        wrk(off.baseline_url, connections=RATIO_CONCURRENCY, seconds=2, token=server.token,
            method="GET")  # fmt: skip
        urls = {"on": server.capture_url, "off": off.capture_url}
        for number, files in enumerate(bodies, start=1):
            order = ("on", "off") if number % 2 else ("off", "on")
            rps = {side: wrk(urls[side], connections=RATIO_CONCURRENCY, seconds=seconds,
                             token=server.token, bodies=files[side])["rps"]
                   for side in order}  # fmt: skip
            rounds.append({"on_rps": rps["on"], "off_rps": rps["off"],
                           "ratio": ratio(rps["on"], rps["off"])})  # fmt: skip
            log(f"metrics round {number}: on {rps['on']} rps, off {rps['off']} rps")
    return {"rounds": rounds, "on_over_off": statistics.median(r["ratio"] for r in rounds)}
