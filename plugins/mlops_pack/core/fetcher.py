"""Fetch one URL politely and safely: per-host gate, retries, redirects, size cap, decoding.

aiohttp does the HTTP (one shared connection pool, async; its resolver hook carries the address
check of ``url_policy``), tenacity decides retries and backoff,
charset-normalizer guesses undeclared encodings. Written here, because no library does it for us:
the per-host gate (concurrency, minimum delay and Retry-After pauses shared by every request to a
host), redirects re-checked against the allow list and robots.txt at each hop, and the size cap
enforced while streaming.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from mlops_pack.core.errors import MlopsError
from mlops_pack.core.url_form import normalized_url
from mlops_pack.core.url_policy import AddressRefused, UrlPolicy, guarded_resolver

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mlops_pack.core.spec import SourceSpec

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 507, 509, 520, 521, 522, 523, 524})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class FetchFailed(MlopsError, RuntimeError):
    """The URL could not be fetched into a usable response; the message says why."""


class TooManyRedirects(FetchFailed):
    """More redirects than allowed; robots.txt treats this as "unavailable" (RFC 9309 2.3.1.2)."""


class Refused(FetchFailed):
    """Policy refused the URL before anything was sent: ``kind`` is robots, host, address or redirect."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class Fetched:
    url: str  # after redirects
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def text(self) -> str:
        """The body decoded: declared charset, else UTF-8, else the detected one; bad bytes replaced."""
        return decode_body(self.body, self.headers.get("content-type", ""))


# The encodings of the WHATWG Encoding Standard (what browsers decode), as Python codec names. Any other
# codec a page declares is ignored: Python's punycode and idna codecs are quadratic (1 MB = 33 s of CPU),
# and utf-7 and friends only exist to smuggle markup. All of these decode in linear time.
WEB_CODECS = frozenset({
    "utf-8", "utf-16", "utf-16-le", "utf-16-be", "cp866", "iso8859-2", "iso8859-3", "iso8859-4", "iso8859-5",
    "iso8859-6", "iso8859-7", "iso8859-8", "iso8859-10", "iso8859-13", "iso8859-14", "iso8859-15", "iso8859-16",
    "koi8-r", "koi8-u", "mac-roman", "mac-cyrillic", "cp874", "cp1250", "cp1251", "cp1252", "cp1253", "cp1254",
    "cp1255", "cp1256", "cp1257", "cp1258", "gbk", "gb18030", "big5", "big5hkscs", "euc_jp", "iso2022_jp",
    "shift_jis", "cp932", "euc_kr", "cp949"})
# WHATWG: the labels latin-1 and ascii mean windows-1252 (its 0x80-0x9F are printable: euro sign, quotes).
AS_WINDOWS_1252 = frozenset({"iso8859-1", "latin-1", "ascii"})


def web_codec(label: str) -> str | None:
    """The Python codec for a declared charset, or None when unknown or not a web encoding."""
    import codecs

    try:
        name = codecs.lookup(label).name
    except (LookupError, ValueError):
        return None
    if name in AS_WINDOWS_1252:
        return "cp1252"
    return name if name in WEB_CODECS else None


def decode_body(body: bytes, content_type: str) -> str:
    """The declared charset when it is a web encoding, else UTF-8, else the detected one."""
    declared = None
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            declared = web_codec(value.strip("\"' "))
    if declared:
        return body.decode(declared, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode(detect_codec(body[:200_000]), errors="replace")


def detect_codec(sample: bytes) -> str:
    """charset-normalizer's guess, except that windows-1252 wins a tie: on equal scores its first pick
    is arbitrary among single-byte codecs (French Latin-1 came out as cp1250: è->č, à->ŕ), and
    windows-1252 is what browsers assume for an undeclared Western page."""
    from charset_normalizer import from_bytes

    matches = from_bytes(sample)
    best = matches.best()
    if best is None:
        return "utf-8"
    tied = [m.encoding for m in matches
            if (m.percent_chaos, m.percent_coherence) == (best.percent_chaos, best.percent_coherence)]
    codec = "cp1252" if "cp1252" in tied else best.encoding
    return web_codec(codec) or codec


@dataclass(frozen=True)
class Want:
    """What a fetch accepts: content types (None: any), the body cap, and whether a body over the cap
    is cut to its first ``max_bytes`` (robots.txt) instead of failing."""

    content_types: list[str] | None
    max_bytes: int
    keep_prefix: bool = False


class HostGate:
    """Per-host politeness: at most ``concurrency`` requests in flight, starts ``delay`` s apart,
    and a shared pause when the host answers 429/503 with Retry-After."""

    def __init__(self, concurrency: int, delay: float):
        self._slots = asyncio.Semaphore(concurrency)
        self._lock = asyncio.Lock()
        self.delay = delay
        self._next_start = 0.0

    def pause(self, seconds: float) -> None:
        self._next_start = max(self._next_start, time.monotonic() + seconds)

    @asynccontextmanager
    async def slot(self):
        async with self._slots:
            async with self._lock:
                wait = self._next_start - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._next_start = time.monotonic() + self.delay
            yield


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Fetcher:
    """One crawl's HTTP side. Use as ``async with Fetcher(source) as f: await f.fetch(url)``.

    :param robots_check: coroutine ``(url) -> reason | None`` asked before every hop except robots.txt.
    """

    def __init__(self, source: SourceSpec, headers: dict[str, str] | None = None,
                 robots_check: Callable[[str], Awaitable[str | None]] | None = None):
        self.source = source
        self.policy = UrlPolicy(source.allowed_hosts)
        self.headers = {"User-Agent": source.user_agent, **(headers or {})}
        self.robots_check = robots_check
        self._gates: dict[str, HostGate] = {}
        self.delays: dict[str, float] = {}  # per-host crawl-delay from robots.txt
        self.stats = {"requests": 0, "retries": 0, "bytes": 0, "redirects": 0}
        self.client = None

    async def __aenter__(self) -> Fetcher:
        import aiohttp

        s = self.source
        timeout = aiohttp.ClientTimeout(total=s.timeout_seconds, connect=s.connect_timeout_seconds,
                                        sock_read=s.read_timeout_seconds)
        hosts = max(1, len(s.allowed_hosts))
        # No DNS cache: every new connection is resolved and checked by the guarded resolver.
        connector = aiohttp.TCPConnector(resolver=guarded_resolver(self.policy), use_dns_cache=False,
                                         limit=s.max_concurrency_per_host * hosts + 2, limit_per_host=0)
        self.client = aiohttp.ClientSession(connector=connector, headers=self.headers, timeout=timeout,
                                            trust_env=False, auto_decompress=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()

    def gate(self, url: str) -> HostGate:
        host = urlsplit(url).netloc.lower()
        if host not in self._gates:
            delay = max(self.source.min_delay_seconds, self.delays.get(host, 0.0))
            self._gates[host] = HostGate(self.source.max_concurrency_per_host, delay)
        return self._gates[host]

    async def fetch(self, url: str, *, conditional: dict[str, str] | None = None,
                    content_types: list[str] | None = None, check_robots: bool = True,
                    max_redirects: int | None = None, keep_prefix: int | None = None) -> Fetched:
        """The final response for ``url`` after at most ``max_redirects`` checked redirects.

        2xx bodies are read (capped); other statuses come back without a body. With ``keep_prefix``
        the body is read up to that many bytes and the rest dropped, not refused (robots.txt). Raises
        Refused when policy forbids a hop, FetchFailed when the response is unusable (TooManyRedirects
        past the limit), aiohttp errors (or TimeoutError) when the network fails after the retries;
        ``network_errors()`` lists them all.
        """
        # The spelling checked below is the one requested: yarl would resolve /a/../private itself (url_form).
        current, headers = normalized_url(url), dict(conditional or {})
        limit = self.source.max_redirects if max_redirects is None else max_redirects
        want = Want(content_types, keep_prefix or self.source.max_response_bytes, keep_prefix is not None)
        for hop in range(limit + 1):
            await self._check(current, check_robots, first=hop == 0)
            fetched = await self._with_retries(current, headers, want)
            location = fetched.headers.get("location")
            if fetched.status not in REDIRECT_STATUSES or not location:
                return fetched
            self.stats["redirects"] += 1
            current, headers = normalized_url(urljoin(current, location)), {}
        raise TooManyRedirects(f"more than {limit} redirects from {url} (last: {current})")

    async def _check(self, url: str, check_robots: bool, first: bool) -> None:
        # A refused redirect target is a failed page (kind "redirect"), not a link we chose to skip.
        where, kind = ("", None) if first else ("redirect target ", "redirect")
        refusal = self.policy.url_refusal(url)
        if refusal:
            raise Refused(f"{where}{url} refused: {refusal}", kind or "host")
        refusal = self.policy.literal_refusal(url)  # IP literals are never resolved, so never reach the resolver
        if refusal:
            raise Refused(f"{where}{url} refused before connecting: {refusal}", kind or "address")
        if check_robots and self.robots_check:
            refusal = await self.robots_check(url)
            if refusal:
                raise Refused(f"{where}{url} refused: {refusal}", kind or "robots")

    async def _with_retries(self, url: str, headers: dict[str, str], want: Want) -> Fetched:
        import aiohttp
        from tenacity import AsyncRetrying, retry_if_exception, retry_if_result, wait_exponential_jitter

        s, gate = self.source, self.gate(url)
        backoff = wait_exponential_jitter(initial=s.retry_backoff_seconds, max=max(s.retry_backoff_seconds, 30),
                                          jitter=s.retry_backoff_seconds)

        def retry_after(state) -> float | None:
            outcome = state.outcome
            if outcome is None or outcome.failed:
                return None
            return retry_after_seconds(outcome.result().headers.get("retry-after"))

        def stop(state) -> bool:
            remaining = s.retry_max_seconds - state.seconds_since_start
            # A Retry-After past the time budget means: give up now rather than ignore the server.
            return state.attempt_number > s.max_retries or remaining <= 0 or (retry_after(state) or 0) > remaining

        def wait(state) -> float:
            pause = retry_after(state)
            if pause is not None:
                gate.pause(pause)  # every request to this host waits, not only this one
                return 0.0
            return min(backoff(state), max(0.0, s.retry_max_seconds - state.seconds_since_start))

        def count(state) -> None:
            self.stats["retries"] += 1

        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, aiohttp.ClientError | TimeoutError)
                                     and not isinstance(e, aiohttp.InvalidURL))
            | retry_if_result(lambda f: f.status in RETRY_STATUSES),
            stop=stop, wait=wait, before_sleep=count, reraise=True,
            retry_error_callback=lambda state: state.outcome.result(),
        )
        return await retrying(self._attempt, url, headers, want, gate)

    async def _attempt(self, url: str, headers: dict[str, str], want: Want, gate: HostGate) -> Fetched:
        import aiohttp

        async with gate.slot():
            self.stats["requests"] += 1
            try:
                async with asyncio.timeout(self.source.timeout_seconds):
                    return await self._send(url, headers, want)
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, AddressRefused):  # the resolver refused: not a network failure
                    raise Refused(f"{url} refused before connecting: {exc.os_error}", "address") from exc
                raise
            except AddressRefused as exc:
                raise Refused(f"{url} refused before connecting: {exc}", "address") from exc

    async def _send(self, url: str, headers: dict[str, str], want: Want) -> Fetched:
        content_types, cap = want.content_types, want.max_bytes
        async with self.client.get(url, headers=headers, allow_redirects=False) as response:
            kept = {k: response.headers[k] for k in ("content-type", "etag", "last-modified", "location",
                                                      "retry-after") if k in response.headers}
            fetched = Fetched(url, response.status, kept)
            if not 200 <= response.status < 300:
                return fetched
            if content_types and fetched.content_type not in content_types:
                raise FetchFailed(f"{url}: content type {fetched.content_type or 'missing'!r} is not one of "
                                  f"{content_types}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap and not want.keep_prefix:
                raise FetchFailed(f"{url}: body of {int(declared)} bytes is over source.max_response_bytes={cap}")
            chunks, size = [], 0
            async for chunk in response.content.iter_any():  # decoded: a compression bomb hits the cap too
                size += len(chunk)
                if size > cap and want.keep_prefix:
                    chunks.append(chunk[:len(chunk) - (size - cap)])
                    break  # leaving the block closes the connection: the rest is never read
                if size > cap:
                    self.stats["bytes"] += response.content.total_raw_bytes
                    raise FetchFailed(f"{url}: body is over source.max_response_bytes={cap}; stopped reading")
                chunks.append(chunk)
            self.stats["bytes"] += response.content.total_raw_bytes  # on the wire (compressed)
            fetched.body = b"".join(chunks)
            return fetched


def network_errors() -> tuple[type[BaseException], ...]:
    """What ``Fetcher.fetch`` raises when a URL cannot be fetched (Refused is a FetchFailed)."""
    import aiohttp

    return FetchFailed, aiohttp.ClientError, TimeoutError


def describe_error(exc: BaseException) -> str:
    """A one-line reason for a failed fetch, naming the phase for timeouts."""
    import aiohttp

    if isinstance(exc, FetchFailed):
        return str(exc)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "connect timeout"
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return "read timeout: the server stalled"
    if isinstance(exc, TimeoutError):
        return "timeout: the whole request took longer than source.timeout_seconds"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
