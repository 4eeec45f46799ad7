"""The real network path of `listening.http.fetch` (not the FakeWeb seam): every hop is
resolved once, the address checked, and the connection made to that very address. The
resolver and the socket are replaced, so nothing leaves the machine."""

from __future__ import annotations

import io
import socket

import pytest

from rapport.listening import http

PUBLIC = "93.184.216.34"


class Net:
    """A resolver with a queue of answers per host, and sockets that record where they were
    opened and answer from a queue of raw HTTP responses."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answers: dict[str, list[str]] = {}
        self.resolved: list[str] = []
        self.connected: list[tuple[str, int]] = []
        self.sent: list[bytes] = []
        self.replies: list[bytes] = []
        monkeypatch.setattr(socket, "getaddrinfo", self.getaddrinfo)
        monkeypatch.setattr(socket, "create_connection", self.create_connection)

    def resolve(self, host: str, *addresses: str) -> Net:
        self.answers[host] = list(addresses)
        return self

    def reply(self, status: str, headers: dict[str, str] | None = None, body: bytes = b"") -> Net:
        head = {"Content-Length": str(len(body)), **(headers or {})}
        lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in head.items()]
        self.replies.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return self

    def getaddrinfo(self, host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.resolved.append(host)
        queue = self.answers.get(host)
        if queue is None:
            # IP literals in any spelling (decimal, hex, octal) resolve as the C library says.
            return _real_getaddrinfo(host, port, *args, **kwargs)
        addr = queue.pop(0) if len(queue) > 1 else queue[0]
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (addr, port))]

    def create_connection(self, address, timeout=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.connected.append(address)
        return _Sock(self, self.replies.pop(0) if self.replies else b"HTTP/1.1 200 OK\r\n\r\n")


_real_getaddrinfo = socket.getaddrinfo


class _Sock:
    def __init__(self, net: Net, reply: bytes) -> None:
        self.net, self.reply = net, reply

    def sendall(self, data: bytes) -> None:
        self.net.sent.append(data)

    def makefile(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return io.BufferedReader(io.BytesIO(self.reply))  # as a real socket file: peek() too

    def close(self) -> None:
        pass


@pytest.fixture
def net(monkeypatch, settings):
    settings.RAPPORT_LISTENING_ALLOW_PRIVATE = False
    return Net(monkeypatch)


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "::ffff:127.0.0.1", "169.254.169.254", "10.0.0.7", "::1", "fe80::1"]
)
def test_a_host_resolving_to_a_non_public_address_is_refused_without_connecting(net, address):
    net.resolve("feeds.example.com", address)
    with pytest.raises(http.FetchError) as exc:
        http.fetch("http://feeds.example.com/rss")
    assert exc.value.permanent and "non-public" in str(exc.value)
    assert net.connected == []


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # decimal 127.0.0.1
        "http://0x7f000001/",  # hex
        "http://0177.0.0.1/",  # octal
        "http://127.1/",
        "http://[::ffff:7f00:1]/",
        "http://0xa9fea9fe/latest/meta-data/",  # 169.254.169.254
    ],
)
def test_ip_literals_in_any_spelling_are_refused(net, url):
    with pytest.raises(http.FetchError) as exc:
        http.fetch(url)
    assert exc.value.permanent
    assert net.connected == []


def test_the_connection_goes_to_the_address_that_was_checked(net):
    # A rebinding DNS server: public for the check, loopback for anyone who asks again.
    net.resolve("rebind.example.com", PUBLIC, "127.0.0.1")
    net.reply("200 OK", {"Content-Type": "application/rss+xml"}, b"<rss/>")
    resp = http.fetch("http://rebind.example.com/feed?page=2")
    assert resp.status == 200 and resp.body == b"<rss/>"
    assert resp.header("content-type") == "application/rss+xml"
    assert net.connected == [(PUBLIC, 80)]
    assert net.resolved == ["rebind.example.com"]  # resolved once, not again at connect time
    request = net.sent[0].decode()
    assert request.startswith("GET /feed?page=2 HTTP/1.1\r\n")
    assert "Host: rebind.example.com\r\n" in request
    assert "User-Agent: Rapport-Listening/" in request


def test_a_redirect_to_a_private_address_is_refused(net):
    net.resolve("feeds.example.com", PUBLIC).resolve("internal.example.com", "10.1.2.3")
    net.reply("302 Found", {"Location": "http://internal.example.com/admin"})
    with pytest.raises(http.FetchError) as exc:
        http.fetch("http://feeds.example.com/rss")
    assert exc.value.permanent
    assert net.connected == [(PUBLIC, 80)]  # the private target was never connected to


def test_a_redirect_to_a_private_ip_literal_is_refused(net):
    net.resolve("feeds.example.com", PUBLIC)
    net.reply("301 Moved Permanently", {"Location": "http://169.254.169.254/latest/meta-data/"})
    with pytest.raises(http.FetchError):
        http.fetch("http://feeds.example.com/rss")
    assert net.connected == [(PUBLIC, 80)]


def test_a_public_redirect_is_followed_and_pinned_to_its_own_checked_address(net):
    other = "93.184.216.35"
    net.resolve("feeds.example.com", PUBLIC).resolve("mirror.example.net", other, "127.0.0.1")
    net.reply("301 Moved Permanently", {"Location": "http://mirror.example.net:8080/rss"})
    net.reply("200 OK", {}, b"ok")
    resp = http.fetch("http://feeds.example.com/rss")
    assert resp.body == b"ok"
    assert net.connected == [(PUBLIC, 80), (other, 8080)]


def test_a_declared_body_over_the_cap_is_refused_before_reading(net, settings):
    settings.RAPPORT_LISTENING_MAX_BYTES = 100
    net.resolve("feeds.example.com", PUBLIC)
    net.reply("200 OK", {"Content-Length": "5000"}, b"")
    with pytest.raises(http.TooLarge):
        http.fetch("http://feeds.example.com/rss")


def test_a_body_over_the_cap_is_refused_even_without_a_length(net, settings):
    settings.RAPPORT_LISTENING_MAX_BYTES = 100
    net.resolve("feeds.example.com", PUBLIC)
    net.replies.append(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 500)
    with pytest.raises(http.TooLarge):
        http.fetch("http://feeds.example.com/rss")


def test_an_unresolvable_host_is_a_transient_error(net, monkeypatch):
    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise socket.gaierror("Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(http.FetchError) as exc:
        http.fetch("http://nowhere.example.com/")
    assert not exc.value.permanent


def test_a_stream_is_pinned_and_read_line_by_line_through_chunks(net):
    net.resolve("api.x.example", PUBLIC, "127.0.0.1")
    chunks = [b'{"data": {"id": "1"}}\r\n', b"\r\n", b'{"data": {"id": "2"}}\r\n']
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    net.reply("200 OK", {"Transfer-Encoding": "chunked", "Content-Length": ""}, body)
    net.replies[-1] = net.replies[-1].replace(b"Content-Length: \r\n", b"")
    stream = http.open_stream("http://api.x.example/2/tweets/search/stream", headers={"A": "b"})
    assert stream.status == 200
    assert list(stream.lines()) == chunks
    stream.close()
    assert net.connected == [(PUBLIC, 80)] and net.resolved == ["api.x.example"]


def test_a_stream_or_post_to_a_private_address_is_refused(net):
    net.resolve("api.x.example", "10.0.0.7")
    with pytest.raises(http.FetchError) as exc:
        http.open_stream("http://api.x.example/2/tweets/search/stream")
    assert exc.value.permanent
    with pytest.raises(http.FetchError):
        http.post_json("http://api.x.example/2/tweets/search/stream/rules", {"add": []})
    assert net.connected == []


def test_a_stream_error_status_comes_back_with_its_document(net):
    net.resolve("api.x.example", PUBLIC)
    net.reply(
        "429 Too Many Requests", {"x-rate-limit-reset": "1700000000"}, b'{"title": "TooManyConnections"}'
    )
    stream = http.open_stream("http://api.x.example/2/tweets/search/stream")
    assert stream.status == 429 and stream.header("x-rate-limit-reset") == "1700000000"
    assert b"TooManyConnections" in stream.body and list(stream.lines()) == []


def test_post_json_sends_the_body_to_the_pinned_address(net):
    net.resolve("api.x.example", PUBLIC)
    net.reply("200 OK", {"Content-Type": "application/json"}, b'{"meta": {}}')
    resp = http.post_json(
        "http://api.x.example/rules", {"delete": {"ids": ["1"]}}, headers={"Authorization": "Bearer t"}
    )
    assert resp.status == 200 and resp.body == b'{"meta": {}}'
    sent = b"".join(net.sent).decode()
    assert sent.startswith("POST /rules HTTP/1.1") and '{"delete": {"ids": ["1"]}}' in sent
    assert net.connected == [(PUBLIC, 80)]
