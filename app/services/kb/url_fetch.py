"""Fetching one web page or file for the knowledge base, guarded against SSRF.

A user-supplied URL must not make the server reach what only it can reach: loopback, private
networks, link-local addresses (cloud metadata at 169.254.169.254) and the like are refused
unless MAI_KB_URL_ALLOWLIST names the host or network. The name is resolved once and the
connection goes to the checked address (so a second DNS answer cannot swap it), every redirect
is checked the same way, and the body is limited in size (MAI_KB_MAX_UPLOAD_MB) and time
(MAI_KB_URL_TIMEOUT_SECONDS).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from app.core.errors import PayloadTooLarge, Unprocessable

MAX_REDIRECTS = 5
MAX_URL_CHARS = 2000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlNotAllowed(Unprocessable):
    """The URL is not http(s), or points at an address the server must not reach."""

    code = "url_not_allowed"


class UrlFetchFailed(Unprocessable):
    """The page could not be fetched (DNS, connection, HTTP error, timeout)."""

    code = "url_fetch_failed"


@dataclass(frozen=True, slots=True)
class FetchedFile:
    """What a URL returned: a file name for type detection, the bytes and the final URL."""

    filename: str
    data: bytes
    url: str
    content_type: str


class UrlGuard:
    """Decides which addresses a fetch may connect to."""

    def __init__(self, allowlist: list[str]) -> None:
        self.hosts: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allowlist:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry.lower().rstrip("."))

    def allowed(self, host: str, address: IPAddress) -> bool:
        """Public addresses always; others only when the host or network is allow-listed."""
        if host.lower().rstrip(".") in self.hosts:
            return True
        if any(address in network for network in self.networks):
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return self.allowed(host, address.ipv4_mapped)
        return address.is_global and not address.is_multicast

    async def resolve(self, url: str) -> tuple[str, str, IPAddress]:
        """(scheme, host, the address to connect to), or UrlNotAllowed before any connection."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UrlNotAllowed("Only http:// and https:// URLs with a host name can be fetched.")
        if parts.username or parts.password:
            raise UrlNotAllowed("URLs with a user name or password are not fetched.")
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except OSError:
                raise UrlFetchFailed(f"The host {host!r} could not be resolved.") from None
            addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        refused = [a for a in addresses if not self.allowed(host, a)]
        if refused or not addresses:
            raise UrlNotAllowed(
                f"{host} resolves to {refused[0] if refused else 'nothing'}, a loopback, private, "
                "link-local or otherwise internal address; add it to MAI_KB_URL_ALLOWLIST to "
                "allow it.",
                meta={"host": host},
            )
        return parts.scheme, host, addresses[0]


def _filename(url: str, content_type: str, disposition: str | None) -> str:
    if disposition and "filename=" in disposition:
        name = disposition.split("filename=", 1)[1].split(";", 1)[0].strip().strip('"')
        if name:
            return name
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    if name and "." in name:
        return name
    if "html" in content_type:
        return (name or "page") + ".html"
    if "markdown" in content_type:
        return (name or "page") + ".md"
    if "pdf" in content_type:
        return (name or "document") + ".pdf"
    return (name or "page") + ".txt" if content_type.startswith("text/") else name or "download"


async def fetch_url(url: str, *, guard: UrlGuard, max_bytes: int, timeout: float) -> FetchedFile:
    """Fetch one URL (following checked redirects) within the size and time limits."""
    if len(url) > MAX_URL_CHARS:
        raise UrlNotAllowed(f"The URL is over {MAX_URL_CHARS} characters.")
    try:
        async with asyncio.timeout(timeout):
            return await _fetch(url, guard, max_bytes)
    except TimeoutError:
        raise UrlFetchFailed(
            f"The page did not arrive within {timeout:g} s (MAI_KB_URL_TIMEOUT_SECONDS)."
        ) from None


async def _fetch(url: str, guard: UrlGuard, max_bytes: int) -> FetchedFile:
    # trust_env=False: a proxy from the environment would connect on our behalf, unchecked.
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as client:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            scheme, host, address = await guard.resolve(current)
            parts = urlsplit(current)
            netloc = f"[{address}]" if address.version == 6 else str(address)
            if parts.port:
                netloc += f":{parts.port}"
            pinned = parts._replace(netloc=netloc).geturl()
            host_header = host if not parts.port else f"{host}:{parts.port}"
            request = client.build_request(
                "GET",
                pinned,
                headers={"Host": host_header, "User-Agent": "MAI knowledge base"},
                extensions={"sni_hostname": host} if scheme == "https" else {},
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as error:
                raise UrlFetchFailed(
                    f"{host} could not be reached ({type(error).__name__})."
                ) from None
            try:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    if not location:
                        raise UrlFetchFailed(f"{host} answered a redirect without a location.")
                    current = urljoin(current, location)
                    continue
                if response.status_code >= 400:
                    raise UrlFetchFailed(
                        f"{host} answered HTTP {response.status_code} for this URL.",
                        meta={"status": response.status_code},
                    )
                declared = int(response.headers.get("content-length") or 0)
                if declared > max_bytes:
                    raise _too_large(max_bytes)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise _too_large(max_bytes)
                    chunks.append(chunk)
            finally:
                await response.aclose()
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            return FetchedFile(
                filename=_filename(
                    current, content_type, response.headers.get("content-disposition")
                ),
                data=b"".join(chunks),
                url=current,
                content_type=content_type,
            )
        raise UrlFetchFailed(f"More than {MAX_REDIRECTS} redirects; fetch the final URL instead.")


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The page is over the {max_bytes // (1024 * 1024)} MB limit (MAI_KB_MAX_UPLOAD_MB).",
        code="file_too_large",
        meta={"limit_bytes": max_bytes},
    )
