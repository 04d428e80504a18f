"""Render deploy/nginx/chat.conf for a deployment: ``python -m deploy.nginx.render``.

The template's marked places are ``{{ listen }}`` (nginx's ``listen`` argument: a port or
``address:port``), ``{{ server_name }}``, ``{{ zone }}`` (this balancer's default client
zone, may be empty), ``{{ log_dir }}`` (the access log's folder) and ``{{ server }}``: a
line holding it is repeated once per chat process (``host:port``), in the order given.
Nothing else changes, so the file the tests run is the checked-in one. Values are checked
to be single nginx words (or a plain path), so no value can add a directive.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

TEMPLATE = Path(__file__).with_name("chat.conf")
_PLACE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_WORD = re.compile(r"[A-Za-z0-9._:\[\]*~-]+")
_PATH = re.compile(r"/[A-Za-z0-9._/-]*")
_ZONE = re.compile(r"[A-Za-z0-9._-]*")


class RenderError(ValueError):
    pass


def _checked(name: str, value: str, pattern: re.Pattern[str] = _WORD) -> str:
    if not pattern.fullmatch(value):
        raise RenderError(f"{name} {value!r}: not a single plain nginx word or path")
    return value


def render(
    servers: Sequence[str],
    *,
    listen: str = "80",
    server_name: str = "_",
    zone: str = "",
    log_dir: str = "/var/log/nginx",
    template: str | None = None,
) -> str:
    """The site file for ``servers`` (``host:port`` of each chat process)."""
    if not servers:
        raise RenderError("at least one chat server (host:port) is needed")
    values = {
        "listen": _checked("listen", listen),
        "server_name": _checked("server_name", server_name),
        "zone": _checked("zone", zone, _ZONE),
        "log_dir": _checked("log_dir", log_dir.rstrip("/") or "/", _PATH),
    }
    checked_servers = [_checked("server", server) for server in servers]
    lines: list[str] = []
    text = TEMPLATE.read_text() if template is None else template
    for line in text.splitlines(keepends=True):
        names = set(_PLACE.findall(line))
        unknown = names - {*values, "server"}
        if unknown:
            raise RenderError(f"unknown place {sorted(unknown)} in: {line.strip()}")
        copies = (
            [{**values, "server": server} for server in checked_servers]
            if "server" in names
            else [values]
        )
        lines += [_fill(line, copy) for copy in copies]
    return "".join(lines)


def _fill(line: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return _PLACE.sub(value, line)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.nginx.render", description=__doc__.split("\n", 1)[0]
    )
    parser.add_argument(
        "--server", action="append", required=True, help="host:port of a chat process (repeat)"
    )
    parser.add_argument("--listen", default="80", help="nginx's listen: port or address:port")
    parser.add_argument("--server-name", default="_", help="the public host name")
    parser.add_argument("--zone", default="", help="default client zone (X-Client-Zone)")
    parser.add_argument("--log-dir", default="/var/log/nginx", help="access log's directory")
    parser.add_argument("--output", type=Path, help="write here instead of standard output")
    args = parser.parse_args(argv)
    try:
        text = render(
            args.server,
            listen=args.listen,
            server_name=args.server_name,
            zone=args.zone,
            log_dir=args.log_dir,
        )
    except RenderError as exc:
        parser.error(str(exc))
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
