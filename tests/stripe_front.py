"""What the end-to-end tests put between the payments-stripe provider and stripe-mock.

stripe-mock is stateless and never declines a card. Real Stripe in test mode declines the
token `tok_chargeDeclined` with a 402 `card_error`; this front does the same and passes
everything else to stripe-mock. It also records each request, so a test can count how
often Stripe was asked to charge.
"""
from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DECLINED = (b'{"error":{"type":"card_error","code":"card_declined","decline_code":"generic_decline",'
            b'"message":"Your card was declined."}}')


class StripeFront:
    def __init__(self, stripe_mock_url: str):
        self.stripe_mock_url = stripe_mock_url
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        front = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                form = dict(urllib.parse.parse_qsl(body.decode()))
                with front.lock:
                    front.requests.append({"path": self.path, "key": self.headers.get("idempotency-key"), "form": form})
                if self.path == "/v1/charges" and form.get("source") == "tok_chargeDeclined":
                    return self.answer(402, DECLINED)
                forwarded = urllib.request.Request(front.stripe_mock_url + self.path, data=body, method="POST", headers={
                    k: v for k, v in self.headers.items() if k.lower() in ("authorization", "idempotency-key", "content-type")})
                try:
                    with urllib.request.urlopen(forwarded, timeout=10) as res:
                        self.answer(res.status, res.read())
                except urllib.error.HTTPError as e:
                    self.answer(e.code, e.read())

            def answer(self, status: int, body: bytes):
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def charges_for(self, order_id: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["path"] == "/v1/charges" and r["form"].get("metadata[orderId]") == order_id]

    def refunds(self) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["path"] == "/v1/refunds"]

    def close(self):
        self.server.shutdown()
