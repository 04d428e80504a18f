"""deploy/nginx/chat.conf and its renderer: only the marked places change."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from deploy.nginx.render import TEMPLATE, RenderError, main, render
from tests.e2e.nginx import Nginx


def test_every_place_is_filled_and_nothing_else_changes() -> None:
    servers = ["10.0.0.11:8000", "10.0.0.11:8001", "[fd00::12]:8000"]
    text = render(
        servers, listen="443", server_name="chat.example.com", zone="eu", log_dir="/var/log/x"
    )
    assert "{{" not in text
    upstream = [line.strip() for line in text.splitlines() if "fail_timeout=" in line]
    assert upstream == [f"server {s} max_fails=1 fail_timeout=10s;" for s in servers]
    # Keepalive towards the clients: a client whose network vanished is dropped.
    assert "    listen 443 so_keepalive=20s:5s:3;\n" in text
    assert "    server_name chat.example.com;\n" in text
    assert '    default "eu";\n' in text
    assert "    access_log /var/log/x/chat-access.log chat_access;\n" in text
    template = TEMPLATE.read_text().splitlines()
    rendered = text.splitlines()
    assert len(rendered) == len(template) + len(servers) - 1
    unchanged = [line for line in template if "{{" not in line]
    assert [line for line in rendered if line in unchanged] == unchanged


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("server", "10.0.0.1:80; include /etc/passwd"),
        ("listen", "80 default_server"),
        ("server_name", "a\nb"),
        ("zone", "eu west"),
        ("log_dir", "relative/dir"),
    ],
)
def test_a_value_cannot_add_a_directive(field: str, value: str) -> None:
    servers = [value] if field == "server" else ["127.0.0.1:8000"]
    options = {} if field == "server" else {field: value}
    with pytest.raises(RenderError):
        render(servers, **options)


def test_no_server_no_config() -> None:
    with pytest.raises(RenderError):
        render([])


def test_the_command_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "chat.conf"
    assert main(["--server", "127.0.0.1:8000", "--listen", "8080", "--output", str(out)]) == 0
    assert "listen 8080 so_keepalive=20s:5s:3;" in out.read_text()


def test_debian_nginx_accepts_the_rendered_file(tmp_path: Path) -> None:
    nginx = Nginx(tmp_path, ["127.0.0.1:8001", "127.0.0.1:8002"], zone="z1")
    nginx.write_config()
    checked = subprocess.run(nginx.command("-t"), capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
