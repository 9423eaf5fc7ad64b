"""Event operations: how far behind each consumer is, what was dead-lettered and why,
and putting a dead letter back on the bus.

`./ticketing events` prints the event stream, one line per durable consumer (pending,
waiting for an ack, redelivered) and every dead letter with the reason its handler gave.
`./ticketing events replay SEQ` publishes dead letter SEQ again on its original subject:
every consumer of that subject gets it once more (handlers are idempotent, so those that
had applied it ignore it), and the dead letter stays for the record.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

from .nats import Nats
from .settings import ROOT, Profile

EVENTS = "TICKETING_EVENTS"
DEAD_LETTERS = "TICKETING_DEAD_LETTERS"
SUBJECT_HEADER = "Ticketing-Subject"
FAILURE_HEADER = "Ticketing-Failure"

# The subjects and the consumer-name rule, written once for Rust and Python alike.
SHARED = json.loads((ROOT / "api" / "events.json").read_text(encoding="utf-8"))
SUBJECTS: tuple[str, ...] = tuple(SHARED["subjects"])


def consumer_name(subscriber: str, subject: str) -> str:
    """The durable consumer the messaging provider keeps for `subscriber` (a component's
    wadm id) and `subject`, named as its `consumer_name` in bus.rs does (the examples in
    api/events.json hold both to it): every char but letters, digits and `-` becomes `_`."""
    clean = lambda text: re.sub(r"[^A-Za-z0-9-]", "_", text)  # noqa: E731
    return f"{clean(subscriber)}__{clean(subject)}"


@dataclass
class DeadLetter:
    seq: int
    consumer: str
    subject: str
    failure: str
    payload: bytes
    time: str


def headers_of(raw: bytes) -> dict[str, str]:
    """NATS headers (`NATS/1.0` then `Key: value` lines)."""
    found = {}
    for line in raw.decode(errors="replace").split("\r\n")[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            found[key.strip()] = value.strip()
    return found


def dead_letter(bus: Nats, seq: int) -> DeadLetter | None:
    reply = bus.request(f"$JS.API.STREAM.MSG.GET.{DEAD_LETTERS}", json.dumps({"seq": seq}).encode())
    message = json.loads(reply).get("message")
    if not message:
        return None
    headers = headers_of(base64.b64decode(message.get("hdrs", "")))
    return DeadLetter(
        seq=seq,
        consumer=message["subject"].split(".", 1)[-1],
        subject=headers.get(SUBJECT_HEADER, "?"),
        failure=headers.get(FAILURE_HEADER, "?"),
        payload=base64.b64decode(message.get("data", "")),
        time=message.get("time", ""),
    )


def dead_letters(bus: Nats) -> list[DeadLetter]:
    state = bus.jetstream(f"STREAM.INFO.{DEAD_LETTERS}").get("state", {})
    if not state.get("messages"):
        return []
    found = (dead_letter(bus, seq) for seq in range(state["first_seq"], state["last_seq"] + 1))
    return [d for d in found if d]


def report(profile: Profile) -> str:
    bus = Nats(profile.ports["nats"], profile.address)
    try:
        stream = bus.jetstream(f"STREAM.INFO.{EVENTS}").get("state", {})
        lines = [f"stream {EVENTS}: {stream.get('messages', 0)} events kept (last sequence {stream.get('last_seq', 0)})",
                 "", f"{'consumer':<44} {'pending':>8} {'unacked':>8} {'redelivered':>12}"]
        for consumer in sorted(bus.jetstream(f"CONSUMER.LIST.{EVENTS}").get("consumers", []), key=lambda c: c["name"]):
            lines.append(f"{consumer['name']:<44} {consumer.get('num_pending', 0):>8} "
                         f"{consumer.get('num_ack_pending', 0):>8} {consumer.get('num_redelivered', 0):>12}")
        letters = dead_letters(bus)
        lines += ["", f"dead letters ({DEAD_LETTERS}): {len(letters)}"]
        for d in letters:
            lines.append(f"  #{d.seq} {d.time[:19]} {d.consumer} ({d.subject}): {d.failure}")
            lines.append(f"      {d.payload[:160].decode(errors='replace')}")
        if letters:
            lines.append("  put one back on the bus with: ./ticketing events replay SEQ")
        return "\n".join(lines)
    finally:
        bus.close()


def replay(profile: Profile, seq: int) -> DeadLetter:
    """Publishes dead letter `seq` again on its original subject (acked by the stream)."""
    bus = Nats(profile.ports["nats"], profile.address)
    try:
        letter = dead_letter(bus, seq)
        if letter is None:
            raise SystemExit(f"no dead letter #{seq}: `./ticketing events` lists them")
        ack = json.loads(bus.request(f"events.{letter.subject}", letter.payload))
        if "error" in ack:
            raise SystemExit(f"the event stream refused the replay: {ack['error']}")
        return letter
    finally:
        bus.close()
