#!/usr/bin/env python3
"""A webhook receiver for SyncChat's tests, verifying every delivery with the official
Standard Webhooks library (PyPI `standardwebhooks`), not with SyncChat's own code.

    receiver.py --port P --secrets whsec_a[,whsec_b] --out deliveries.jsonl --mode-file mode

Each POST is appended to --out as one JSON line: the webhook-id, the body's type,
conversationId and seq, the index of each secret whose verification passed, the status
answered. The mode file (re-read per request) says how to answer: `ok` (200), `fail` (503),
`gone` (410), `slow <seconds>` (wait, then 200). Prints `listening <port>` when ready.
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

args = None
lock = threading.Lock()


def mode():
    try:
        with open(args.mode_file) as f:
            return f.read().strip() or "ok"
    except OSError:
        return "ok"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified = []
        for i, secret in enumerate(args.secrets.split(",")):
            try:
                Webhook(secret).verify(body, headers)
                verified.append(i)
            except WebhookVerificationError:
                pass
        try:
            event = json.loads(body)
        except ValueError:
            event = {}
        data = event.get("data") or {}
        how = mode()
        status = 200
        if how == "fail":
            status = 503
        elif how == "gone":
            status = 410
        elif how.startswith("slow"):
            time.sleep(float(how.split()[1]))
        record = {
            "webhookId": headers.get("webhook-id"),
            "bodyId": event.get("id"),
            "type": event.get("type"),
            "conversationId": data.get("conversationId"),
            "seq": data.get("seq"),
            "data": data,
            "verified": verified,
            "status": status,
        }
        with lock:
            with open(args.out, "a") as f:
                f.write(json.dumps(record) + "\n")
        reply = b'{"ok": true}' if status == 200 else b'{"error": "not now"}'
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secrets", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--mode-file", required=True)
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
