#!/usr/bin/env python3
"""A local SMTP server for the mail tests: stores each message it receives.

    python3 tests/support/smtp_sink.py --port N --dir D [--host 127.0.0.1]

Each message is written to D as `<n>-<uuid>.eml` (the raw DATA, as received),
first under a dot-name then renamed, so a reader never sees half a message; its
envelope's recipients (RCPT TO), one a line, to `<n>-<uuid>.rcpt` before it.
A recipient listed in the file D/refused (one address a line, read at each RCPT)
is answered 450, a temporary refusal: the sender tries again later.
With --port 0 it picks a free port itself. Once it listens, it writes the port it
listens on to D/.port: a test waits for that file, not for a connection, so that it
never mistakes another sink on the same port for its own.
Stops on SIGTERM or SIGINT. Needs `aiosmtpd` (python3 -m pip install aiosmtpd).
"""

import argparse
import itertools
import os
import signal
import socket
import threading
import uuid

from aiosmtpd.controller import Controller


class DirectorySink:
    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refused():
            return "450 4.2.1 Mailbox temporarily unavailable (refused for the test)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def refused(self):
        try:
            with open(os.path.join(self.directory, "refused"), encoding="utf-8") as listed:
                return {line.strip().lower() for line in listed if line.strip()}
        except FileNotFoundError:
            return set()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            number = next(self.counter)
        name = f"{number:06d}-{uuid.uuid4().hex}.eml"
        stem = name[: -len(".eml")]
        with open(os.path.join(self.directory, stem + ".rcpt"), "w", encoding="utf-8") as rcpt:
            rcpt.write("".join(address + "\n" for address in envelope.rcpt_tos))
        partial = os.path.join(self.directory, "." + name)
        with open(partial, "wb") as out:
            out.write(envelope.original_content or envelope.content)
        os.rename(partial, os.path.join(self.directory, name))
        return "250 Message accepted for delivery"


def listening(handler, host, port):
    """A started controller and its port; port 0 picks a free one, trying again when
    another process takes it between the pick and the bind."""
    if port != 0:
        controller = Controller(handler, hostname=host, port=port)
        controller.start()
        return controller, port
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            candidate = probe.getsockname()[1]
        controller = Controller(handler, hostname=host, port=candidate)
        try:
            controller.start()
            return controller, candidate
        except Exception:  # taken meanwhile: pick another
            continue
    raise SystemExit("no free port found for the SMTP sink")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    controller, port = listening(DirectorySink(args.dir), args.host, args.port)
    ready = os.path.join(args.dir, ".port.partial")
    with open(ready, "w", encoding="utf-8") as out:
        out.write(f"{port}\n")
    os.rename(ready, os.path.join(args.dir, ".port"))
    print(f"smtp sink listening on {args.host}:{port}, writing to {args.dir}", flush=True)
    try:
        stop.wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
