"""/api/docs/ and /api/redoc/ run only scripts of our own origin (item 2 of issue 11).

The pages sit on the origin whose localStorage holds the device tokens, so they must not
load anything from a CDN (and must work offline), and a Content-Security-Policy must stop
any other script from running there.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from django.test import Client

from tests.e2e.conftest import ServerProcess

DOC_PAGES = ["/api/docs/", "/api/redoc/"]


class _References(HTMLParser):
    """Collects every URL the page makes the browser fetch (scripts, styles, icons...)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "spec-url"} and value:
                self.urls.append(value)


def referenced_urls(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


@pytest.mark.django_db
@pytest.mark.parametrize("page", DOC_PAGES)
def test_doc_page_loads_only_its_own_origin_and_has_a_strict_csp(client: Client, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    urls = referenced_urls(html)
    assert any(urlsplit(url).path.endswith(".js") for url in urls), urls
    for url in urls:
        parts = urlsplit(url)
        # Relative references only: no scheme, no host (also no protocol-relative //host).
        assert not parts.scheme, url
        assert not parts.netloc, url
    for url in urls:
        if url.startswith("/api/schema/"):
            continue  # the schema itself is checked by the schema tests
        asset = client.get(urljoin(page, url))
        assert asset.status_code == 200, url

    policy = csp_directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"], policy
    assert policy["default-src"] == ["'self'"], policy
    assert policy["object-src"] == ["'none'"], policy
    assert policy["frame-ancestors"] == ["'none'"], policy
    for sources in policy.values():
        for source in sources:
            # Only keywords and our own origin: no host, no scheme wildcard such as https:.
            assert source.startswith("'") or source in {"data:", "blob:"}, (policy, source)


@pytest.mark.e2e
@pytest.mark.parametrize("page", DOC_PAGES)
def test_doc_page_assets_are_served_by_manage_py_serve(served: ServerProcess, page: str) -> None:
    """The same through the real server (WhiteNoise in front of the ASGI app), not just the
    test client: the bundles, Swagger's init script and the schema answer 200."""
    response = httpx.get(served.base_url + page, timeout=30)
    assert response.status_code == 200
    assert csp_directives(response.headers["Content-Security-Policy"])["script-src"] == ["'self'"]
    for url in referenced_urls(response.text):
        assert not urlsplit(url).netloc, url
        asset = httpx.get(urljoin(served.base_url + page, url), timeout=30)
        assert asset.status_code == 200, url
        assert asset.content, url
