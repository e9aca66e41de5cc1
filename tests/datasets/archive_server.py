"""A small threaded HTTP server on 127.0.0.1 for the data set tests: serves files from a dict, with
Range requests (206, 416), and can cut a transfer off after N bytes or ignore Range, as a flaky or
simple server would. http.server's SimpleHTTPRequestHandler has no Range support, hence this.

Also runnable by hand, to show ``cgx datasets fetch`` against it:
    python tests/datasets/archive_server.py FOLDER --port 8765 --cut-first 400000
serves FOLDER's files (cyclegan/datasets/NAME.zip ...) and cuts the first transfer after 400000 bytes
(--rate BYTES: send slowly, to leave time for a Ctrl-C).
"""
from __future__ import annotations

import argparse
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Request:
    path: str
    range: str | None
    status: int


@dataclass
class ArchiveServer:
    files: dict[str, bytes] = field(default_factory=dict)
    """URL path (``/cyclegan/datasets/horse2zebra.zip``) -> body."""
    cuts: list[int] = field(default_factory=list)
    """Each request takes the next number off this list and closes the connection after sending that many
    body bytes (the headers still announce the whole length)."""
    ignore_range: bool = False
    rate: int | None = None
    """Bytes per second at most (when run by hand, to leave time for a Ctrl-C)."""
    verbose: bool = False
    """Print each request as it is answered (when run by hand)."""
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int = 0) -> "ArchiveServer":
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def _handler(server: ArchiveServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            body = server.files.get(self.path)
            asked = self.headers.get("Range")
            if body is None:
                return self._reply(404, b"not found", asked)
            status, start, headers = 200, 0, {}
            m = re.fullmatch(r"bytes=(\d+)-", asked or "")
            if m and not server.ignore_range:
                start = int(m.group(1))
                if start >= len(body):
                    return self._reply(416, b"", asked, {"Content-Range": f"bytes */{len(body)}"})
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
            self._reply(status, body[start:], asked, headers, cut=server.cuts.pop(0) if server.cuts else None)

        def _reply(self, status, data, asked, headers=None, cut=None):
            server.requests.append(Request(self.path, asked, status))
            if server.verbose:
                print(f"[server] GET {self.path} Range: {asked} -> {status}"
                      + (f", closing after {cut} bytes" if cut is not None else ""), flush=True)
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Type", "application/octet-stream")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if cut is not None:
                self.send_header("Connection", "close")
            self.end_headers()
            data = data if cut is None else data[:cut]
            try:
                if not server.rate:
                    self.wfile.write(data)
                step = max(1, (server.rate or 1) // 20)
                for i in range(0, len(data) if server.rate else 0, step):
                    self.wfile.write(data[i:i + step])
                    time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                if server.verbose:
                    print("[server] the client went away", flush=True)
            if cut is not None:
                self.close_connection = True

    return Handler


def main() -> None:
    p = argparse.ArgumentParser(description="serve a folder's files with Range support, for cgx datasets fetch")
    p.add_argument("folder")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--cut-first", type=int, default=None, metavar="N",
                   help="close the first transfer after N body bytes")
    p.add_argument("--rate", type=int, default=None, metavar="BYTES", help="send at most BYTES per second")
    args = p.parse_args()
    root = Path(args.folder)
    files = {"/" + f.relative_to(root).as_posix(): f.read_bytes() for f in root.rglob("*") if f.is_file()}
    s = ArchiveServer(files=files, cuts=[args.cut_first] if args.cut_first else [], rate=args.rate,
                      verbose=True).start(args.port)
    print(f"serving {', '.join(files)} at {s.url()}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        s.stop()


if __name__ == "__main__":
    main()
