"""Messages per second of crmcore-messaging to a local SMTP server and a local HTTP gateway.

    .venv/bin/python benchmarks/bench_messaging.py [--messages 5000]
        [--backend sqlite|postgresql|both] [--postgres URL]

A child process serves SMTP (``aiosmtpd``, counting the Message-IDs it
receives) and HTTP (``http.server``, answering every POST with 200 and a JSON
id) on loopback. For each backend the benchmark

1. creates ``--messages`` customers with consent, and queues one email for
   each with ``enqueue`` (one call per message) and one SMS for each with
   ``enqueue_many``, in one unit of work each (timed: enqueue rates);
2. drains the email queue with ``send_pending`` (claim, send, record: the
   interaction through core and the state) and then the SMS queue;
3. sends the same messages with a bare loop as baseline: ``smtplib`` on one
   connection (the same ``EmailMessage``), ``urllib.request`` POSTs of the same
   JSON body;

and prints messages per second of each and the ratio ours / raw. Every run
checks that the servers received exactly the messages sent.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import smtplib
import socket
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import crmcore_messaging.plugin
from crmcore_messaging import delivery, queue
from crmcore_messaging.channels.base import Outgoing
from crmcore_messaging.channels.http import render_template
from crmcore_messaging.channels.smtp import build_email
from scratch import open_scratch

from crmcore import CRM, Config

POSTGRES = os.environ.get(
    "CRM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BODY = {"to": "{to}", "text": "{text}", "ref": "{message_id}"}
SENDER = "CRM <crm@example.com>"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(smtp_port: int, http_port: int, mails: Any, posts: Any, ready: Any, stop: Any) -> None:
    """The child process: an aiosmtpd server and an HTTP gateway until ``stop`` is set."""
    from aiosmtpd.controller import Controller

    class Count:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with mails.get_lock():
                mails.value += 1
            return "250 OK"

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with posts.get_lock():
                posts.value += 1
            answer = b'{"id": "gw"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    controller = Controller(Count(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    http = ThreadingHTTPServer(("127.0.0.1", http_port), Gateway)
    import threading

    threading.Thread(target=http.serve_forever, daemon=True).start()
    ready.set()
    stop.wait()
    http.shutdown()
    controller.stop()


def _section(smtp_port: int, http_port: int) -> dict[str, Any]:
    return {
        "default_timezone": "UTC",
        "caps": [{"channel": "*", "max": 100, "days": 1}],
        "channels": {
            "email": {
                "type": "smtp",
                "consent": "marketing_email",
                "host": "127.0.0.1",
                "port": smtp_port,
                "from": SENDER,
            },
            "sms": {
                "type": "http",
                "consent": "marketing_sms",
                "url": f"http://127.0.0.1:{http_port}/sms",
                "body": BODY,
            },
        },
    }


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def _raw_smtp(port: int, messages: list[Outgoing]) -> None:
    with smtplib.SMTP("127.0.0.1", port) as connection:
        for message in messages:
            connection.send_message(build_email(message, SENDER), from_addr="crm@example.com")


def _raw_http(port: int, messages: list[Outgoing]) -> None:
    url = f"http://127.0.0.1:{port}/sms"
    for message in messages:
        values = {"to": message.recipient, "text": message.text, "message_id": str(message.id)}
        data = json.dumps(render_template(BODY, values)).encode()
        request = urllib.request.Request(
            url, data=data, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>9,.0f} msg/s ({seconds:.2f} s)"


def _compare(label: str, baseline: str, count: int, ours: float, raw: float) -> None:
    print(f"  {label}  {'crmcore-messaging':<26}{_rate(count, ours)}")
    print(f"  {label}  {baseline:<26}{_rate(count, raw)}")
    print(f"  {label}  {'ratio ours / raw':<26}{raw / ours:>9.2f}")


def run_backend(
    backend: str, args: argparse.Namespace, ports: tuple[int, int], counts: Any
) -> None:
    """Enqueue, drain and compare on one backend; print the figures."""
    n = args.messages
    smtp_port, http_port = ports
    mails, posts = counts
    base, drop = open_scratch(
        backend, args.postgres, [crmcore_messaging.plugin], lambda: datetime.now(UTC), "messaging"
    )
    url = base.engine.url.render_as_string(hide_password=False)
    crm = CRM.open(
        Config(database_url=url, plugin_sections={"messaging": _section(smtp_port, http_port)}),
        plugins=[crmcore_messaging.plugin],
        discover=False,
    )
    try:
        consent = {"marketing_email": True, "marketing_sms": True}
        customers = crm.customers.create_many(
            {
                "name": f"Customer {i}",
                "email": f"c{i}@example.com",
                "phone": f"+86138{i:08d}",
                "consent": consent,
            }
            for i in range(n)
        )
        ids = [c.id for c in customers if c.id is not None]

        def requests(channel: str) -> list[dict[str, Any]]:
            return [
                {
                    "customer_id": customer_id,
                    "channel": channel,
                    "subject": f"Offer {i}",
                    "text": f"Dear customer {i}, this month's offer is waiting for you.",
                }
                for i, customer_id in enumerate(ids)
            ]

        def enqueue(channel: str) -> None:
            with crm.unit_of_work() as uow:
                for request in requests(channel):
                    queue.enqueue(uow, **request)

        def enqueue_many(channel: str) -> None:
            with crm.unit_of_work() as uow:
                queue.enqueue_many(uow, requests(channel))

        print(f"\n{backend}: {n:,} messages per channel")
        seconds, _ = _timed(lambda: enqueue("email"))
        print(f"  enqueue, one call each          {_rate(n, seconds)}")
        before = mails.value
        ours, report = _timed(lambda: delivery.send_pending(crm))
        assert report.sent == n and mails.value - before == n, (report, mails.value - before)
        messages = [
            Outgoing(
                id=i,
                token=f"{i:032x}",
                channel="email",
                recipient=f"c{i}@example.com",
                purpose="marketing",
                text=f"Dear customer {i}, this month's offer is waiting for you.",
                subject=f"Offer {i}",
            )
            for i in range(n)
        ]
        before = mails.value
        raw, _ = _timed(lambda: _raw_smtp(smtp_port, messages))
        assert mails.value - before == n
        _compare("SMTP", "raw smtplib loop", n, ours, raw)
        seconds, _ = _timed(lambda: enqueue_many("sms"))
        print(f"  enqueue_many (batches of 500)   {_rate(n, seconds)}")
        before = posts.value
        ours_http, sms_report = _timed(lambda: delivery.send_pending(crm))
        assert sms_report.sent == n and posts.value - before == n, sms_report
        sms = [attrs.evolve(m, channel="sms", recipient=f"+86138{m.id:08d}") for m in messages]
        before = posts.value
        raw_http, _ = _timed(lambda: _raw_http(http_port, sms))
        assert posts.value - before == n
        _compare("HTTP", "raw urllib loop", n, ours_http, raw_http)
    finally:
        crm.close()
        drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgres", default=POSTGRES)
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    mails, posts = spawn.Value("i", 0), spawn.Value("i", 0)
    ready, stop = spawn.Event(), spawn.Event()
    ports = (_free_port(), _free_port())
    server = spawn.Process(target=serve, args=(*ports, mails, posts, ready, stop), daemon=True)
    server.start()
    if not ready.wait(30):
        sys.exit("the SMTP/HTTP server process did not start")
    print("crmcore-messaging: messages per second, servers on loopback in another process")
    print("(ratio ours / raw: the bare loop's time over ours; 1.00 = as fast as the loop)")
    try:
        backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
        for backend in backends:
            run_backend(backend, args, ports, (mails, posts))
    finally:
        stop.set()
        server.join(10)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
