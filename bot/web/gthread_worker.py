"""gunicorn worker class `bot.web.gthread_worker.Worker`: gthread, with each request read whole before a thread sees it.

gunicorn's gthread worker gives a connection to a pool thread as soon as its socket is readable, and the thread
then blocks reading the request head and body, so a few dozen clients that stall hold every thread. Here the
worker's poller loop (its main thread) reads heads and bodies without blocking, under the limits and deadlines
of the ASGI deployment (`bot.web.serving`), and hands a connection to the pool only once its whole request is
buffered; the parser then reads those bytes from `BufferedSocket`. Serves plain HTTP/1.x: with TLS or HTTP/2
cleartext configured it behaves as the stock gthread worker.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

from bot.settings import Settings
from bot.web.serving import HEAD_DEADLINE, MAX_HEAD_BYTES, MAX_REQUEST_LINE, TIMEOUT_ERROR, body_due, refusal

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# A thread only ever reads bytes already buffered; this bounds what is left (sending the answer to a client
# that does not read it, or a framing this module and gunicorn's parser disagree on).
THREAD_IO_TIMEOUT = 5.0
LINGER = 2.0  # seconds a closed connection is drained for, so the client reads the answer (RFC 9112, 9.6)
READS_PER_EVENT = 4  # 64 KiB reads per readiness event: one fast client cannot starve the others
MAX_CHUNK_LINE = 4096


class BadFraming(ValueError):
    """The head or the chunked framing of a request cannot be read."""


class BufferedSocket:
    """A client socket whose reads return the buffered request first; everything else is the socket's."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.ready = bytearray()

    def recv(self, size: int, flags: int = 0) -> bytes:
        """The buffered bytes first, then the socket's."""
        if self.ready:
            out = bytes(self.ready[:size])
            del self.ready[:size]
            return out
        return self.sock.recv(size, flags)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """`recv` into `buffer`."""
        view = memoryview(buffer).cast("B")
        data = self.recv(nbytes or len(view), flags)
        view[: len(data)] = data
        return len(data)

    def send(self, data: bytes, flags: int = 0) -> int:
        """Send, except gunicorn's `100 Continue`: the body is here already (the reader sent one if it waited)."""
        return len(data) if data == CONTINUE else self.sock.send(data, flags)

    def sendall(self, data: bytes, flags: int = 0) -> None:
        """Send all, except gunicorn's `100 Continue`."""
        if data != CONTINUE:
            self.sock.sendall(data, flags)

    def setblocking(self, flag: bool) -> None:
        """Blocking means bounded by `THREAD_IO_TIMEOUT` here."""
        self.sock.settimeout(THREAD_IO_TIMEOUT if flag else 0.0)

    def settimeout(self, value: float | None) -> None:
        """No read or write in a thread waits longer than `THREAD_IO_TIMEOUT`."""
        self.sock.settimeout(THREAD_IO_TIMEOUT if value is None else min(value, THREAD_IO_TIMEOUT))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class Conn(TConn):
    """A gthread connection with the state of the request being read on the poller loop."""

    sock: BufferedSocket

    def __init__(
        self, cfg: Any, sock: BufferedSocket, client: Any, server: Any, linger: Callable[[Conn], None]
    ) -> None:
        super().__init__(cfg, sock, client, server)
        self.data_ready = True  # never wait for data on a thread: the request is there
        self.linger = linger
        self.buf = bytearray()
        self.start_request(time.monotonic() + HEAD_DEADLINE, fresh=True)

    def start_request(self, head_due: float, fresh: bool) -> None:
        """Reset the reading state for the next request on this connection."""
        self.fresh = fresh  # a new connection's first head is due `HEAD_DEADLINE` after connecting
        self.head_due = head_due
        self.scanned = 0
        self.head_end = -1
        self.body_started = 0.0
        self.body_bytes = 0
        self.length = 0
        self.chunked = False
        self.discard = False  # answered 413: the rest of the body is read and dropped
        self.pos = 0
        self.chunk_left = -1  # -1: a chunk-size line is next; -2: the CRLF after a chunk; -3: trailers
        self.end = -1

    def due(self) -> float:
        """When this request is cut if no more of it arrives."""
        if self.head_end < 0:
            return self.head_due
        return body_due(self.body_started, self.body_bytes)

    def close(self, graceful: bool = False) -> None:
        """A graceful close drains on the poller loop, not on the thread that called it."""
        if graceful:
            self.linger(self)
        else:
            with contextlib.suppress(OSError):
                self.sock.sock.close()


def _framing(head: bytes) -> tuple[int, bool, bool]:
    """(Content-Length, chunked, expects 100-continue) of a request head."""
    length: int | None = None
    chunked = expect = False
    for raw in head.split(b"\n")[1:]:
        name, sep, value = raw.rstrip(b"\r").partition(b":")
        key, value = name.strip().lower(), value.strip()
        if not sep:
            continue
        if key == b"content-length":
            if not value.isdigit() or (length is not None and int(value) != length):
                raise BadFraming("invalid Content-Length")
            length = int(value)
        elif key == b"transfer-encoding":
            codings = [c.strip().lower() for c in value.split(b",")]
            if codings[-1] != b"chunked":
                raise BadFraming("unsupported Transfer-Encoding")
            chunked = True
        elif key == b"expect":
            expect = value.lower() == b"100-continue"
    if chunked and length is not None:  # RFC 9112, 6.1: a request smuggling vector, refused
        raise BadFraming("both Content-Length and Transfer-Encoding")
    return (length or 0), chunked, expect


def _chunks(conn: Conn) -> int:
    """Advance over the chunked body in `conn.buf`; return the body bytes seen, set `conn.end` at its end."""
    buf, seen = conn.buf, 0
    while conn.end < 0:
        if conn.chunk_left > 0:
            take = min(conn.chunk_left, len(buf) - conn.pos)
            conn.pos += take
            conn.chunk_left -= take
            seen += take
            if conn.chunk_left:
                break
            conn.chunk_left = -2
            continue
        if conn.chunk_left == -2:
            if len(buf) - conn.pos < 2:
                break
            if buf[conn.pos : conn.pos + 2] != b"\r\n":
                raise BadFraming("chunk not followed by CRLF")
            conn.pos += 2
            conn.chunk_left = -1
            continue
        nl = buf.find(b"\n", conn.pos, conn.pos + MAX_CHUNK_LINE)
        if nl < 0:
            if len(buf) - conn.pos >= MAX_CHUNK_LINE:
                raise BadFraming("chunk line too long")
            break
        line = bytes(buf[conn.pos : nl]).rstrip(b"\r")
        conn.pos = nl + 1
        if conn.chunk_left == -3:  # a trailer line; the empty one ends the body
            if not line:
                conn.end = conn.pos
            continue
        size = line.split(b";", 1)[0].strip()
        if not size or len(size) > 16 or any(c not in b"0123456789abcdefABCDEF" for c in size):
            raise BadFraming("invalid chunk size")
        conn.chunk_left = int(size, 16) or -3
    return seen


class Worker(ThreadWorker):
    """gthread whose threads only ever see whole requests (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading: dict[Conn, None] = {}  # insertion-ordered set
        self.lingering: dict[socket.socket, float] = {}
        self.cap = Settings.max_body_bytes
        self.own = not self.cfg.is_ssl and getattr(self.cfg, "http2_cleartext", "off") == "off"

    def run(self) -> None:
        """Learn the body cap from the loaded app, then run gthread's loop."""
        settings = getattr(self.wsgi, "settings", None)
        self.cap = getattr(settings, "max_body_bytes", self.cap)
        super().run()

    def accept(self, listener: socket.socket) -> None:
        """A new connection is read on the poller loop until its first request is whole."""
        if not self.own:
            super().accept(listener)
            return
        try:
            client, addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = Conn(self.cfg, BufferedSocket(client), addr, listener.getsockname(), self._linger)
        self._watch(conn)

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        """A kept-alive connection's next request is read on the poller loop too."""
        if not isinstance(conn, Conn):
            super().on_client_socket_readable(conn, client)
            return
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        conn.start_request(time.monotonic() + HEAD_DEADLINE, fresh=False)
        self._watch(conn)
        self._readable(conn)

    def finish_request(self, conn: Any, fs: Any) -> None:
        """gthread's, then a pipelined request already buffered is read on without waiting for the socket."""
        super().finish_request(conn, fs)
        if isinstance(conn, Conn) and conn.buf and conn in self.keepalived_conns:
            self.on_client_socket_readable(conn, conn.sock)

    def murder_pending(self) -> None:
        """gthread's, then cut requests past their deadlines and end lingering closes."""
        super().murder_pending()
        now = time.monotonic()
        for conn in list(self.reading):
            if conn.due() <= now or (not self.alive and conn.fresh and not conn.buf):
                self._expire(conn)
        for sock, due in list(self.lingering.items()):
            if due <= now:
                self._close_lingering(sock)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        """Wake up for the next deadline, not only once a second."""
        dues = [c.due() for c in self.reading] + list(self.lingering.values())
        if dues:
            timeout = min(timeout, max(0.01, min(dues) - time.monotonic()))
        super().wait_for_and_dispatch_events(timeout)

    # --- reading on the poller loop ------------------------------------------------------------------------

    def _watch(self, conn: Conn) -> None:
        conn.sock.sock.setblocking(False)
        self.reading[conn] = None
        self.poller.register(conn.sock.sock, selectors.EVENT_READ, partial(self._readable, conn))

    def _unwatch(self, conn: Conn) -> None:
        self.reading.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock.sock)

    def _readable(self, conn: Conn, _fileobj: Any = None) -> None:
        sock = conn.sock.sock
        ended = False
        try:
            for _ in range(READS_PER_EVENT):
                data = sock.recv(65536)
                if not data:  # the client is done sending; what it sent may still be a whole request
                    ended = True
                    break
                conn.buf += data
                if conn.head_end >= 0:
                    conn.body_bytes += len(data)
                if len(data) < 65536:
                    break
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._drop(conn)
            return
        try:
            self._advance(conn)
        except BadFraming as exc:
            self._refuse(conn, 400, str(exc))
        if ended and conn in self.reading:
            self._drop(conn)

    def _advance(self, conn: Conn) -> None:
        buf = conn.buf
        if conn.head_end < 0 and not self._head(conn):
            return
        if conn.discard:  # what arrives is counted (`body_bytes`) and dropped
            if conn.chunked:
                _chunks(conn)
                del buf[: conn.pos]
                conn.pos = 0
            else:
                buf.clear()
            if (
                conn.end >= 0 or (not conn.chunked and conn.body_bytes >= conn.length) or conn.body_bytes > 2 * self.cap
            ):  # drained as much as a 413 is worth
                self._unwatch(conn)
                self._close_softly(conn)
            return
        if conn.chunked:
            _chunks(conn)
            if conn.pos - conn.head_end > self.cap:  # chunk lines and trailers count too
                self._too_large(conn)
                self._advance(conn)
                return
        elif len(buf) >= conn.head_end + conn.length:
            conn.end = conn.head_end + conn.length
        if conn.end >= 0:
            self._handoff(conn)

    def _head(self, conn: Conn) -> bool:
        """Look for the end of the head under its limits; True once it is whole and its framing known."""
        buf = conn.buf
        if buf.find(b"\n", 0, MAX_REQUEST_LINE + 1) < 0 and len(buf) > MAX_REQUEST_LINE:
            self._refuse(conn, 414, "request line too long")
            return False
        start = max(0, conn.scanned - 3)
        ends = [i + len(m) for m in (b"\r\n\r\n", b"\n\n") if (i := buf.find(m, start, MAX_HEAD_BYTES + 4)) >= 0]
        if not ends:
            conn.scanned = len(buf)
            if len(buf) > MAX_HEAD_BYTES:
                self._refuse(conn, 431, "request headers too large")
            return False
        conn.head_end = min(ends)
        conn.body_started = time.monotonic()
        conn.body_bytes = len(buf) - conn.head_end  # counts every body byte received, kept or not
        conn.pos = conn.head_end
        conn.length, conn.chunked, expect = _framing(bytes(buf[: conn.head_end]))
        if conn.length > self.cap:
            self._too_large(conn)
            return True
        if expect and len(buf) == conn.head_end and (conn.chunked or conn.length):
            self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")  # gunicorn's own is dropped by BufferedSocket
        return True

    def _too_large(self, conn: Conn) -> None:
        """Answer 413 now (as `bot.web.flask_app` does), then read the rest of the body and drop it."""
        self._send(conn, refusal(413, f"body larger than {self.cap} bytes"))
        conn.discard = True
        del conn.buf[: conn.pos]
        conn.head_end = conn.pos = 0

    def _handoff(self, conn: Conn) -> None:
        """The request is whole: the thread pool gets it, with any pipelined bytes kept for the next one."""
        self._unwatch(conn)
        ready, conn.buf = conn.buf, conn.buf[conn.end :]
        del ready[conn.end :]
        conn.sock.ready = ready
        conn.sock.sock.settimeout(THREAD_IO_TIMEOUT)
        self.enqueue_req(conn)

    def _expire(self, conn: Conn) -> None:
        if conn.discard:
            self._unwatch(conn)
            self._drop(conn)
        elif conn.head_end >= 0:
            self._refuse(conn, 408, TIMEOUT_ERROR)
        elif conn.buf.strip():
            self._refuse(conn, 408, "request head not received in time")
        else:  # nothing sent at all (or only blank lines): closed without an answer
            self._unwatch(conn)
            self._drop(conn)

    def _refuse(self, conn: Conn, status: int, error: str) -> None:
        self._unwatch(conn)
        self._send(conn, refusal(status, error))
        self._close_softly(conn)

    def _send(self, conn: Conn, data: bytes) -> None:
        # A short answer to a socket that has sent but not yet read: its send buffer takes it whole.
        with contextlib.suppress(OSError):
            conn.sock.sock.send(data)

    def _drop(self, conn: Conn) -> None:
        self._unwatch(conn)
        self.nr_conns -= 1
        with contextlib.suppress(OSError):
            conn.sock.sock.close()

    # --- closing without blocking the loop ------------------------------------------------------------------

    def _close_softly(self, conn: Conn) -> None:
        self.nr_conns -= 1
        self._linger(conn)

    def _linger(self, conn: Conn) -> None:
        """Half-close and drain on the poller loop until the client closes or `LINGER` passes (what gthread's
        `util.close_graceful` does blocking, on this loop, for up to 2 s per connection)."""
        self._unwatch(conn)
        sock = conn.sock.sock
        try:
            sock.setblocking(False)
            sock.shutdown(socket.SHUT_WR)
            self.poller.register(sock, selectors.EVENT_READ, self._drain)
        except (OSError, ValueError, KeyError):
            with contextlib.suppress(OSError):
                sock.close()
            return
        self.lingering[sock] = time.monotonic() + LINGER

    def _drain(self, sock: socket.socket) -> None:
        try:
            for _ in range(READS_PER_EVENT):
                if not sock.recv(65536):
                    break
            else:
                return  # more to come: on a later event, or cut at the linger deadline
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._close_lingering(sock)

    def _close_lingering(self, sock: socket.socket) -> None:
        self.lingering.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(sock)
        with contextlib.suppress(OSError):
            sock.close()
