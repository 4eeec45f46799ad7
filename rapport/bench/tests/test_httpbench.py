import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from rapport.bench.httpbench import Stats, Target, format_table, login, percentile, run_suite, summary
from rapport.bench.management.commands.bench import _external


def test_percentiles_interpolate_between_ranks():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 0) == 1 and percentile(values, 100) == 100
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 95) == 0.0
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_summary_takes_the_worst_p95_at_the_highest_concurrency():
    def s(name, c, p95):
        return Stats(name, c, 10, 0, 1.0, p95, p95 + 1, 100.0)

    result = summary([s("a", 1, 900.0), s("a", 16, 40.0), s("b", 16, 55.5)], people=3)
    assert result["p95_ms_max"] == 55.5 and result["concurrency_max"] == 16 and result["people"] == 3
    assert result["pages"]["a"]["c1"]["p95_ms"] == 900.0
    assert "b" in format_table([s("b", 16, 55.5)])


@pytest.fixture
def session_cookie(alice):
    client = Client()
    client.force_login(alice)
    return f"sessionid={client.cookies['sessionid'].value}"


def test_harness_measures_a_live_server_and_prints_json(live_server, session_cookie):
    targets = [
        Target("healthz", ["/healthz"]),
        Target("search", ["/search/?format=json&q=ab", "/search/?q=al"]),
    ]
    results = run_suite(
        live_server.url, targets, concurrencies=(1, 3), requests=6, warmup=2, cookie=session_cookie
    )
    assert [(r.name, r.concurrency) for r in results] == [
        ("healthz", 1),
        ("healthz", 3),
        ("search", 1),
        ("search", 3),
    ]
    assert all(r.errors == 0 and r.requests == 6 for r in results), [r.error_samples for r in results]
    line = json.dumps(summary(results, bench="core", people=0))
    parsed = json.loads(line)
    assert {"p95_ms_max", "people", "pages", "errors", "requests"} <= set(parsed)
    assert set(parsed["pages"]["search"]["c3"]) == {"requests", "errors", "p50_ms", "p95_ms", "p99_ms", "rps"}
    assert parsed["errors"] == 0 and parsed["p95_ms_max"] > 0


def test_anything_but_200_counts_as_an_error(live_server, db):
    # Without a session the search page redirects to the login page.
    (result,) = run_suite(
        live_server.url, [Target("search", ["/search/?q=ab"])], concurrencies=(2,), requests=4, warmup=0
    )
    assert result.errors == 4
    assert "HTTP 302" in result.error_samples[0]


def test_login_through_the_form_gives_a_working_session(live_server, alice):
    cookie = login(live_server.url, "alice", "correct-horse-battery")
    assert "sessionid=" in cookie
    (result,) = run_suite(
        live_server.url,
        [Target("search", ["/search/?q=ab"])],
        concurrencies=(1,),
        requests=2,
        warmup=0,
        cookie=cookie,
    )
    assert result.errors == 0


def test_missing_benchmark_module_gives_a_clear_error():
    with pytest.raises(CommandError, match="not available"):
        _external("rapport.no_such_benchmark", "ingest")


def test_bench_core_refuses_unknown_pages(db):
    with pytest.raises(CommandError, match="Unknown pages"):
        call_command("bench", "core", "--people", "5", "--pages", "people,nonsense")


def test_server_cpu_per_request_is_reported_when_the_server_pid_is_known(live_server, session_cookie):
    import os

    from rapport.bench.httpbench import process_tree_cpu_seconds

    assert process_tree_cpu_seconds(2**22 + 12345) is None  # no such process
    # The live server runs in this very process, so its CPU is ours.
    (result,) = run_suite(
        live_server.url,
        [Target("search", ["/search/?format=json&q=ab"])],
        concurrencies=(2,),
        requests=8,
        warmup=1,
        cookie=session_cookie,
        server_pid=os.getpid(),
    )
    assert result.errors == 0 and result.server_cpu_ms is not None and result.server_cpu_ms >= 0
    assert "cpu ms/req" in format_table([result])
    assert "server_cpu_ms" in summary([result])["pages"]["search"]["c2"]


def test_chunked_and_close_delimited_bodies_are_read_whole():
    """The hand-rolled client reads a chunked body and one that ends when the server closes."""
    import asyncio

    from rapport.bench.httpbench import _Conn, run_coroutine

    bodies = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno length, closes",
    ]

    async def serve(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(bodies.pop(0))
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        statuses = []
        for _ in range(2):
            conn = _Conn("127.0.0.1", port, 5)
            statuses.append(await conn.get(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
            await conn.close()
        server.close()
        return statuses

    assert run_coroutine(main()) == [200, 404]


def test_bench_dashboard_needs_the_listening_benchs_database(tmp_path, db):
    with pytest.raises(CommandError, match="bench listening"):
        call_command("bench", "dashboard", "--db", str(tmp_path / "missing.sqlite3"))


def test_the_load_generator_runs_inside_a_thread_that_has_a_running_loop():
    """Playwright's sync API (the browser tests) keeps an event loop running in the test
    session's thread; the load generator must still work there."""
    from rapport.bench.httpbench import run_coroutine

    async def inner():
        return 42

    async def outer():
        return run_coroutine(inner())  # called with this loop running

    assert run_coroutine(outer()) == 42
