"""A webhook receiver that checks signatures: python webhook_receiver.py PORT SECRET"""

import http.server
import json
import sys
from decimal import Decimal

from standardwebhooks import Webhook, WebhookVerificationError

verifier = Webhook(sys.argv[2])  # the secret create_webhook printed


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            verifier.verify(body, dict(self.headers), json_parse=False)
        except WebhookVerificationError:
            self.send_response(400)  # not signed with our secret, or too old: refuse it
        else:
            # Money as decimals: parsed as floats, 610.80 is 610.7999… (61079 cents).
            event = json.loads(body, parse_float=Decimal)
            capture = event["data"]["capture"]
            # De-duplicate by webhook-id: a retry of the same event has the same one.
            print(self.headers["webhook-id"], event["type"], event["data"]["order"]["number"],
                  capture["amount"], capture["currency"])  # fmt: skip
            self.send_response(204)
        self.end_headers()


http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()
