"""Whether `make run` can listen on HOST:PORT, said in one line before anything
starts (scripts/run.sh): an address that is not this machine's ended in nginx's
"host not found" and "nginx did not start", after the migrations and the demo data.

    python -m scripts.listen_check HOST PORT ADDRESS

exits 1 printing `make run: <why>` (ADDRESS is HOST:PORT as printed), else 0."""

import errno
import socket
import sys


def problem(host: str, port: int, address: str) -> str | None:
    """Why nothing can listen on host:port, or None. Checked by binding a socket as
    nginx will (SO_REUSEADDR: a connection of a previous run in TIME_WAIT is no
    obstacle; `::` is every address, IPv4 too)."""
    try:
        family, kind, proto, _, where = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError):
        return f"HOST={host} is not an address or a name of this machine"
    try:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(where)
    except OSError as exc:  # EAFNOSUPPORT: an IPv6 HOST on a machine without IPv6
        if exc.errno == errno.EADDRINUSE:
            return f"{address} is taken (set PORT)"
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"HOST={host} is not an address of this machine"
        if exc.errno == errno.EACCES:
            return f"{address}: permission denied (a port below 1024 needs root: set PORT)"
        return f"cannot listen on {address}: {exc.strerror}"
    return None


if __name__ == "__main__":
    host, port, address = sys.argv[1:]
    # A PORT that is no port is gunicorn.conf.py's to refuse, in its own words.
    is_port = port.isascii() and port.isdigit() and 0 < int(port) < 65536
    if is_port and (why := problem(host, int(port), address)):
        sys.exit(f"make run: {why}")
