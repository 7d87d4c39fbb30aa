"""deploy/nginx's proxy outside Docker: `make run` (scripts/run.sh) and the tests run
Debian's nginx with the image's server block (deploy/nginx/omnitron.conf.template), in
front of gunicorn, so that slow or idle clients hold nginx's connections and never
gunicorn's sync workers.

    python -m scripts.nginx DIR UPSTREAM LISTEN MAX_BODY_BYTES

writes DIR/nginx.conf and DIR/omnitron.conf and prints the command that runs nginx in
the foreground with them (PROXY_CONNECTIONS_PER_CLIENT, PROXY_LARGE_BODIES_PER_TOKEN
and PROXY_LARGE_BODIES_PER_ADDRESS: 128, 1 and 4 unless set, as in the image).
Nothing here needs Django."""

import shutil
import sys
from pathlib import Path
from string import Template

from omnitron import env

ROOT = Path(__file__).resolve().parent.parent
SERVER_TEMPLATE = ROOT / "deploy" / "nginx" / "omnitron.conf.template"
# What the image's /etc/nginx/nginx.conf gives the server block, with every path in DIR
# (nginx runs as any user, its workers as `nobody` under root) and no access log: the
# app writes its own request log.
MAIN = """
daemon off;
worker_processes 1;
# Connections still sending their headers are not counted per address (limit_conn counts
# a request once its headers are in): many of them from one address crowd out others
# once every connection is taken, so there are many (a file descriptor each).
worker_rlimit_nofile 40000;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/omnitron.conf;
}}
"""


# deploy/nginx/Dockerfile's too.
DEFAULT_CONNECTIONS_PER_CLIENT = 128
DEFAULT_LARGE_BODIES_PER_TOKEN = 1
DEFAULT_LARGE_BODIES_PER_ADDRESS = 4


def binary() -> str | None:
    """Where nginx is installed (Debian puts it in /usr/sbin, often not on PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def configure(
    workdir: Path,
    *,
    upstream: str,
    listen: str,
    max_body_bytes: int,
    connections_per_client: int = DEFAULT_CONNECTIONS_PER_CLIENT,
    large_bodies_per_token: int = DEFAULT_LARGE_BODIES_PER_TOKEN,
    large_bodies_per_address: int = DEFAULT_LARGE_BODIES_PER_ADDRESS,
) -> list[str]:
    """Write the configuration into `workdir` (made writable for nginx's workers) and
    return the arguments that run nginx with it: `upstream` is gunicorn's host:port,
    `listen` where nginx answers, `connections_per_client` the requests one client
    address may have in progress at once, `large_bodies_per_token` and
    `large_bodies_per_address` those with a body of 30,000 bytes or more one API
    token, and one address, may have."""
    workdir.chmod(0o711)  # nginx's workers (`nobody` under root) pass through it
    server = Template(SERVER_TEMPLATE.read_text()).safe_substitute(
        APP_UPSTREAM=upstream, LISTEN=listen, MAX_BODY_BYTES=str(max_body_bytes),
        CONNECTIONS_PER_CLIENT=str(connections_per_client),
        LARGE_BODIES_PER_TOKEN=str(large_bodies_per_token),
        LARGE_BODIES_PER_ADDRESS=str(large_bodies_per_address),
    )  # fmt: skip
    (workdir / "omnitron.conf").write_text(server)
    (workdir / "nginx.conf").write_text(MAIN.format(dir=workdir))
    return [binary() or "nginx", "-p", str(workdir), "-c", str(workdir / "nginx.conf")]


def limit_from_env(name: str, default: int) -> int:
    """A whole number above 0 from the environment (set but blank: the default), or
    one line naming the variable, as gunicorn.conf.py refuses its numbers."""
    try:
        return env.env_number(name, default, minimum=1)
    except ValueError as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    directory, upstream, listen, max_body = sys.argv[1:]
    args = configure(
        Path(directory), upstream=upstream, listen=listen, max_body_bytes=int(max_body),
        connections_per_client=limit_from_env("PROXY_CONNECTIONS_PER_CLIENT",
                                              DEFAULT_CONNECTIONS_PER_CLIENT),
        large_bodies_per_token=limit_from_env("PROXY_LARGE_BODIES_PER_TOKEN",
                                              DEFAULT_LARGE_BODIES_PER_TOKEN),
        large_bodies_per_address=limit_from_env("PROXY_LARGE_BODIES_PER_ADDRESS",
                                                DEFAULT_LARGE_BODIES_PER_ADDRESS),
    )  # fmt: skip
    print(" ".join(args))
