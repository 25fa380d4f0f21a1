"""Drop documents from blocked domains: a document whose URL's host is a listed domain or a
subdomain of one ("news.example.com" under "example.com", never "notexample.com").

Hosts and domains are compared lower-cased, without port, userinfo or a trailing dot, and in
their IDNA (punycode) form, so "bücher.example" and "xn--bcher-kva.example" are one domain.
Documents without a URL are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from filters.base import KEEP, Document, FilterConfig, LocalFile, Verdict, as_is, register


@register
class UrlBlocklistConfig(FilterConfig):
    """Blocked domains, listed inline and/or in a file (one domain a line, `#` comments)."""

    name: Literal["url_blocklist"] = "url_blocklist"
    domains: list[str] = Field(default_factory=list)
    domains_file: str | None = None  # path, URI or http(s) URL
    files = ("domains_file",)

    @model_validator(mode="after")
    def _has_domains(self) -> UrlBlocklistConfig:
        if not self.domains and self.domains_file is None:
            raise ValueError("give `domains`, a `domains_file`, or both")
        return self

    def build(self, local_file: LocalFile = as_is) -> UrlBlocklist:
        domains = list(self.domains)
        if self.domains_file is not None:
            with open(local_file(self.domains_file), encoding="utf-8") as fh:
                domains += read_domains(fh)
        return UrlBlocklist(domains)


def read_domains(lines: Iterable[str]) -> list[str]:
    """The domains of a blocklist file: one a line; blank lines and `#` comments skipped."""
    return [d for line in lines if (d := line.split("#", 1)[0].strip())]


def normalize_host(host: str) -> str:
    """Lower case, no trailing dot, non-ASCII labels in punycode (IDNA 2003, Python's codec;
    a host it cannot encode is compared as written)."""
    host = host.strip().rstrip(".").lower()
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def url_host(url: str) -> str | None:
    """The host of an absolute or scheme-less URL ("example.com/page"), or None."""
    url = url.strip()
    if "://" not in url and not url.startswith("//"):
        url = "//" + url
    try:
        host = urlsplit(url).hostname  # lower-cased, without userinfo and port
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    return normalize_host(host) if host else None


class UrlBlocklist:
    def __init__(self, domains: Iterable[str]):
        # "*.example.com" and ".example.com" in a list mean the domain and its subdomains too.
        self.domains = {normalize_host(d.lstrip("*.")) for d in domains} - {""}

    def blocked_by(self, url: str) -> tuple[str, str] | None:
        """(host, the listed domain it is or is under), or None."""
        host = url_host(url)
        if host is None:
            return None
        labels = host.split(".")
        for i in range(len(labels)):
            domain = ".".join(labels[i:])
            if domain in self.domains:
                return host, domain
        return None

    def __call__(self, doc: Document) -> Verdict:
        found = self.blocked_by(doc.get("url") or "")
        if found is None:
            return KEEP
        host, domain = found
        return Verdict(False, "domain", note=f"{host} in blocked domain {domain}")
