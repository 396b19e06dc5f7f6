"""A test server for Client ID Metadata Documents, over https with a test CA.

Usage: cimd_server.py --cert LEAF.pem --key LEAF.key --docs DOCS.json --hits HITS

DOCS.json maps a path to {"status": int, "headers": {..}, "body": str,
"delay": seconds to wait before answering}; the
text "{base}" in a body or header is replaced by this server's https origin
(https://localhost:PORT), so a document can name its own URL. Each request's
path is appended, one a line, to HITS (--hits), so a test can count fetches. Prints
"listening on PORT" once it accepts connections; serves until killed.
Listens on 127.0.0.1 only.
"""

import argparse
import http.server
import json
import ssl
import threading
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--docs", required=True)
    parser.add_argument("--hits", required=True)
    args = parser.parse_args()
    hits_lock = threading.Lock()
    with open(args.docs, encoding="utf-8") as file:
        docs = json.load(file)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            base = f"https://localhost:{self.server.server_address[1]}"
            with hits_lock, open(args.hits, "a", encoding="utf-8") as hits:
                hits.write(self.path + "\n")
            doc = docs.get(self.path)
            if doc is not None and doc.get("delay"):
                time.sleep(doc["delay"])
            if doc is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = doc.get("body", "").replace("{base}", base).encode()
            self.send_response(doc.get("status", 200))
            for name, value in doc.get("headers", {}).items():
                self.send_header(name, value.replace("{base}", base))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
