"""Profile captures in-process with pyinstrument: python bench/profile.py BODIES TOKEN

Runs the captures of BODIES (one JSON body per line) through the whole Django stack
(middleware, DRF, the service, PostgreSQL) and prints where the time goes."""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    bodies_path, token = sys.argv[1], sys.argv[2]
    import django

    django.setup()
    from django.test import Client
    from pyinstrument import Profiler

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    bodies = Path(bodies_path).read_text().splitlines()
    warm, measured = bodies[:20], bodies[20:]

    def capture(body):
        response = client.post("/api/v1/capture-order/", body, content_type="application/json")
        if response.status_code != 200:
            raise SystemExit(f"capture failed: {response.content[:300]!r}")

    for body in warm:
        capture(body)
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    profiler.start()
    for body in measured:
        capture(body)
    profiler.stop()
    per_request = (time.perf_counter() - started) / len(measured) * 1000
    print(f"{len(measured)} captures of 1 item, {per_request:.1f} ms each in-process (profiled)")
    text = profiler.output_text(unicode=False, color=False, show_all=False, short_mode=False)
    lines = [line for line in text.splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "Client.post" in line)
    print("\n".join(lines[start : start + 45]))


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omnitron.settings.production")
    main()
