"""Just enough of the NATS client protocol (standard library only) to publish events,
ask JetStream's API and watch a subject: used by `up`'s checks and by the tests."""
from __future__ import annotations

import json
import socket
import uuid


class Nats:
    """Just enough of the NATS client protocol to publish events and ask JetStream."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buffer = b""
        self.sid = 0
        self._line()  # INFO
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":false}\r\nPING\r\n')
        self._expect(b"PONG")

    def close(self):
        self.sock.close()

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("NATS closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n + 2:
            self.buffer += self.sock.recv(65536)
        data, self.buffer = self.buffer[:n], self.buffer[n + 2:]
        return data

    def _expect(self, word: bytes):
        while True:
            line = self._line()
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")
            elif line.startswith(word):
                return line
            elif line.startswith(b"-ERR"):
                raise RuntimeError(line.decode())

    def request(self, subject: str, payload: bytes = b"") -> bytes:
        inbox = f"_INBOX.{uuid.uuid4().hex}"
        self.sid += 1
        self.sock.sendall(f"SUB {inbox} {self.sid}\r\nUNSUB {self.sid} 1\r\nPUB {subject} {inbox} {len(payload)}\r\n".encode()
                          + payload + b"\r\n")
        header = self._expect(b"MSG").split()
        return self._read(int(header[-1]))

    def publish_event(self, subject: str, event: dict) -> None:
        """Publishes like a service does: into the event stream, waiting for its ack."""
        ack = json.loads(self.request(f"events.{subject}", json.dumps(event).encode()))
        assert "error" not in ack, ack

    def jetstream(self, api: str) -> dict:
        return json.loads(self.request(f"$JS.API.{api}"))

    def subscribe(self, subject: str) -> None:
        """Starts receiving `subject`; read with `next_message`."""
        self.sid += 1
        self.sock.sendall(f"SUB {subject} {self.sid}\r\nPING\r\n".encode())
        self._expect(b"PONG")

    def next_message(self, timeout: float) -> tuple[str, bytes] | None:
        """The next (subject, payload) of a subscription, or None after `timeout` seconds."""
        self.sock.settimeout(timeout)
        try:
            header = self._expect(b"MSG").split()
        except (socket.timeout, TimeoutError):
            return None
        finally:
            self.sock.settimeout(10)
        return header[1].decode(), self._read(int(header[-1]))
