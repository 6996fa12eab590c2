"""An OTLP/HTTP receiver that answers 200 to every POST and keeps nothing (the benchmark's
collector: spans are recorded and exported, as in production, at no cost to the measurement
beyond the export itself). Prints its port."""
import http.server
import sys


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
print(server.server_address[1], flush=True)
sys.stdout.close()
server.serve_forever()
