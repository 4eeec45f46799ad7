"""A small HTTP load generator for the benchmarks: keep-alive connections, one per simulated
client (coroutines on one event loop), a warm-up, then a fixed number of GET requests per page
and concurrency level.

Latency is measured from sending the request to having read the whole body. Anything but a
200 counts as an error, with a few samples kept for the report."""

import asyncio
import concurrent.futures
import contextlib
import http.client
import itertools
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit


class BenchError(Exception):
    pass


@dataclass
class Target:
    """A page to measure; requests rotate over `paths` (e.g. many person ids)."""

    name: str
    paths: Sequence[str]


@dataclass
class Stats:
    name: str
    concurrency: int
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    rps: float
    error_samples: list[str] = field(default_factory=list)
    server_cpu_ms: float | None = None  # server CPU time per request (all its processes)

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "p50_ms": round(self.p50_ms, 2),
            "p95_ms": round(self.p95_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "rps": round(self.rps, 1),
            **({"server_cpu_ms": round(self.server_cpu_ms, 2)} if self.server_cpu_ms is not None else {}),
        }


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default): p in [0, 100]."""
    if not sorted_values:
        return 0.0
    if not 0 <= p <= 100:
        raise ValueError("p is between 0 and 100")
    k = (len(sorted_values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def process_tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of `pid` and its children (gunicorn's master and workers),
    from /proc; None where there is no /proc. Tells whether a page is slow because it waits
    or because it computes: at concurrency 16 on 2 cores it is nearly always the latter."""
    proc = Path("/proc")
    if not (proc / str(pid)).exists():
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        this, parent = int(stat.parent.name), int(fields[1])
        if this == pid or parent == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def run_coroutine(coro: Any) -> Any:
    """asyncio.run(coro), also from a thread that already runs an event loop (a notebook, or
    Playwright's sync API in the test session): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _split(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        raise BenchError(f"Only plain http://host:port base URLs are supported, not {base_url!r}.")
    return parts.hostname, parts.port or 80


def _cookie_header(set_cookie_headers: list[str], jar: dict[str, str]) -> None:
    for header in set_cookie_headers:
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for key, morsel in cookie.items():
            jar[key] = morsel.value


def login(base_url: str, username: str, password: str, timeout: float = 30) -> str:
    """Log in through /login/ like a browser (CSRF token included); returns a Cookie header."""
    host, port = _split(base_url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/login/")
        resp = conn.getresponse()
        html = resp.read().decode("utf-8", "replace")
        jar: dict[str, str] = {}
        _cookie_header(resp.headers.get_all("Set-Cookie") or [], jar)
        m = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        if resp.status != 200 or not m or "csrftoken" not in jar:
            raise BenchError(f"GET /login/ gave {resp.status} without a CSRF token.")
        body = urlencode({"csrfmiddlewaretoken": m.group(1), "username": username, "password": password})
        conn.request(
            "POST",
            "/login/",
            body=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={jar['csrftoken']}",
                "Referer": f"{base_url}/login/",
                "Origin": base_url,
            },
        )
        resp = conn.getresponse()
        resp.read()
        _cookie_header(resp.headers.get_all("Set-Cookie") or [], jar)
        if resp.status != 302 or "sessionid" not in jar:
            raise BenchError(f"Logging in as {username!r} failed (HTTP {resp.status}).")
        return "; ".join(f"{k}={v}" for k, v in jar.items())
    finally:
        conn.close()


class _Conn:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol for GETs of
    our own pages: Content-Length or chunked bodies, `Connection: close` honoured."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def get(self, request: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), self.timeout)
        status_line, _, rest = head.partition(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise BenchError(f"Not an HTTP response: {status_line[:80]!r}")
        status = int(parts[1])
        headers = {}
        for line in rest.split(b"\r\n"):
            name, sep, value = line.partition(b":")
            if sep:
                headers[name.strip().lower()] = value.strip().lower()
        if b"content-length" in headers:
            await self.reader.readexactly(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding") == b"chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:  # no length: the body ends when the server closes
            await self.reader.read()
            await self.close()
        if headers.get(b"connection") == b"close":
            await self.close()
        return status


def run_target(
    base_url: str,
    target: Target,
    *,
    concurrency: int,
    requests: int,
    warmup: int = 0,
    cookie: str = "",
    timeout: float = 60,
    server_pid: int | None = None,
) -> Stats:
    """Send `warmup` then `requests` GETs for one target from `concurrency` clients. With
    `server_pid`, also report the server's CPU time per measured request.

    The clients are coroutines on one event loop with hand-rolled HTTP parsing: a threaded
    http.client generator spent more CPU than some of the pages it measured and, with 16
    threads fighting for the GIL, added its own wait to every latency — on a 2-core machine
    shared with the server that was measuring the load generator as much as the app."""
    if concurrency < 1 or requests < 1 or not target.paths:
        raise BenchError("Need at least one path, one request and one thread.")
    host, port = _split(base_url)
    extra = f"Cookie: {cookie}\r\n" if cookie else ""
    # As a browser asks: every browser accepts gzip, and the app compresses text for them.
    requests_bytes = [
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}Accept: text/html\r\n"
        "Accept-Encoding: gzip\r\n\r\n".encode("latin-1")
        for path in target.paths
    ]
    paths = list(target.paths)

    async def main() -> tuple[list[float], int, list[str], float]:
        conns = [_Conn(host, port, timeout) for _ in range(concurrency)]

        async def phase(total: int) -> tuple[list[float], int, list[str], float]:
            counter = itertools.count()
            latencies: list[float] = []
            errors = 0
            samples: list[str] = []

            async def client(conn: _Conn) -> None:
                nonlocal errors
                while True:
                    i = next(counter)
                    if i >= total:
                        return
                    k = i % len(paths)
                    t0 = time.perf_counter()
                    try:
                        status = await conn.get(requests_bytes[k])
                        problem = f"{paths[k]}: HTTP {status}"
                    except (
                        OSError,
                        asyncio.IncompleteReadError,
                        asyncio.LimitOverrunError,
                        TimeoutError,
                        ValueError,
                        BenchError,
                    ) as exc:
                        await conn.close()  # the next request reconnects
                        status = 0
                        problem = f"{paths[k]}: {type(exc).__name__}: {exc}"
                    latencies.append((time.perf_counter() - t0) * 1000)
                    if status != 200:
                        errors += 1
                        if len(samples) < 5:
                            samples.append(problem)

            started = time.perf_counter()
            await asyncio.gather(*(client(c) for c in conns))
            return sorted(latencies), errors, samples, time.perf_counter() - started

        try:
            if warmup:
                await phase(warmup)
            cpu_before[0] = process_tree_cpu_seconds(server_pid) if server_pid else None
            return await phase(requests)
        finally:
            for conn in conns:
                await conn.close()

    cpu_before: list[float | None] = [None]
    values, errors, samples, wall = run_coroutine(main())
    cpu_after = process_tree_cpu_seconds(server_pid) if server_pid else None
    server_cpu_ms = None
    if cpu_before[0] is not None and cpu_after is not None and values:
        server_cpu_ms = (cpu_after - cpu_before[0]) * 1000 / len(values)
    return Stats(
        name=target.name,
        concurrency=concurrency,
        requests=len(values),
        errors=errors,
        p50_ms=percentile(values, 50),
        p95_ms=percentile(values, 95),
        p99_ms=percentile(values, 99),
        rps=len(values) / wall if wall > 0 else 0.0,
        error_samples=samples,
        server_cpu_ms=server_cpu_ms,
    )


def run_suite(
    base_url: str,
    targets: Sequence[Target],
    *,
    concurrencies: Sequence[int] = (1, 16),
    requests: int = 200,
    warmup: int = 20,
    cookie: str = "",
    progress=None,
    server_pid: int | None = None,
) -> list[Stats]:
    results = []
    for target in targets:
        for c in concurrencies:
            stats = run_target(
                base_url,
                target,
                concurrency=c,
                requests=requests,
                warmup=warmup,
                cookie=cookie,
                server_pid=server_pid,
            )
            if progress:
                progress(stats)
            results.append(stats)
    return results


def format_table(results: Sequence[Stats]) -> str:
    cpu = any(s.server_cpu_ms is not None for s in results)
    head = f"{'page':<22} {'conc':>4} {'reqs':>6} {'err':>4} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8}"
    head += f" {'cpu ms/req':>10}" if cpu else ""
    lines = [head, "-" * len(head)]
    for s in results:
        line = (
            f"{s.name:<22} {s.concurrency:>4} {s.requests:>6} {s.errors:>4} {s.p50_ms:>8.1f} "
            f"{s.p95_ms:>8.1f} {s.p99_ms:>8.1f} {s.rps:>8.1f}"
        )
        if cpu:
            line += f" {s.server_cpu_ms:>10.1f}" if s.server_cpu_ms is not None else f" {'—':>10}"
        lines.append(line)
    return "\n".join(lines)


def summary(results: Sequence[Stats], **extra: Any) -> dict[str, Any]:
    """The machine-readable result: per page and concurrency, and the worst p95 at the
    highest concurrency measured (the figure a regression check watches)."""
    pages: dict[str, dict[str, Any]] = {}
    for s in results:
        pages.setdefault(s.name, {})[f"c{s.concurrency}"] = s.as_json()
    top = max((s.concurrency for s in results), default=0)
    worst = max((s.p95_ms for s in results if s.concurrency == top), default=0.0)
    return {
        **extra,
        "concurrency_max": top,
        "p95_ms_max": round(worst, 2),
        "errors": sum(s.errors for s in results),
        "requests": sum(s.requests for s in results),
        "pages": pages,
    }
