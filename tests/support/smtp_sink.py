#!/usr/bin/env python3
"""A local SMTP server for the mail tests: stores each message it receives.

    python3 tests/support/smtp_sink.py --port N --dir D [--host 127.0.0.1]

Each message is written to D as `<n>-<uuid>.eml` (the raw DATA, as received),
first under a dot-name then renamed, so a reader never sees half a message.
Stops on SIGTERM or SIGINT. Needs `aiosmtpd` (python3 -m pip install aiosmtpd).
"""

import argparse
import itertools
import os
import signal
import threading
import uuid

from aiosmtpd.controller import Controller


class DirectorySink:
    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            number = next(self.counter)
        name = f"{number:06d}-{uuid.uuid4().hex}.eml"
        partial = os.path.join(self.directory, "." + name)
        with open(partial, "wb") as out:
            out.write(envelope.original_content or envelope.content)
        os.rename(partial, os.path.join(self.directory, name))
        return "250 Message accepted for delivery"


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

    controller = Controller(DirectorySink(args.dir), hostname=args.host, port=args.port)
    controller.start()
    print(f"smtp sink listening on {args.host}:{args.port}, writing to {args.dir}", flush=True)
    try:
        stop.wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
