#!/usr/bin/python3
"""A gRPC backend that answers wrongly on purpose, for gateway_bad_input.py.

A raw HTTP/2 server (python3-h2, outbound validation off) that reads each
request whole and then answers it the one wrong way --mode says:

  garbage_message     a well-framed gRPC answer whose message is not valid
                      protobuf, then grpc-status 0
  truncated_frame     a length prefix announcing 100 bytes, 10 sent, then
                      grpc-status 0
  wrong_content_type  :status 200, content-type text/html, an HTML body, no
                      grpc-status
  no_trailers         a valid gRPC message, then END_STREAM without trailers
  http_503            :status 503 and no gRPC status at all
  not_http2           not HTTP/2: an HTTP/1.1 error and junk bytes, then close

  gateway_bad_backend.py --port=N --mode=MODE

Prints "listening on PORT" once serving; each answered request is logged.
SIGTERM stops it.
"""

import argparse
import signal
import socket
import struct
import sys
import threading

import h2.config
import h2.connection
import h2.events
import h2.exceptions

MODES = ("garbage_message", "truncated_frame", "wrong_content_type", "no_trailers", "http_503",
         "not_http2")
# shop.v1.Charge{id: "ch-1", status: APPROVED, amount_cents: 100}, written out.
VALID_CHARGE = b"\x0a\x04ch-1\x10\x01\x18\x64"
# Field 1 (string) says 5 bytes, 2 follow.
GARBAGE = b"\x0a\x05ab"


def log(msg):
    print(msg, flush=True)


def grpc_frame(msg, length=None):
    return struct.pack(">BI", 0, len(msg) if length is None else length) + msg


def answer(conn, sid, mode):
    grpc_headers = [(":status", "200"), ("content-type", "application/grpc")]
    ok_trailers = [("grpc-status", "0")]
    if mode == "garbage_message":
        conn.send_headers(sid, grpc_headers)
        conn.send_data(sid, grpc_frame(GARBAGE))
        conn.send_headers(sid, ok_trailers, end_stream=True)
    elif mode == "truncated_frame":
        conn.send_headers(sid, grpc_headers)
        conn.send_data(sid, grpc_frame(b"\x00" * 10, length=100))
        conn.send_headers(sid, ok_trailers, end_stream=True)
    elif mode == "wrong_content_type":
        conn.send_headers(sid, [(":status", "200"), ("content-type", "text/html")])
        conn.send_data(sid, b"<html><body>not gRPC</body></html>", end_stream=True)
    elif mode == "no_trailers":
        conn.send_headers(sid, grpc_headers)
        conn.send_data(sid, grpc_frame(VALID_CHARGE), end_stream=True)
    elif mode == "http_503":
        conn.send_headers(sid, [(":status", "503"), ("content-type", "text/plain")])
        conn.send_data(sid, b"overloaded", end_stream=True)


def serve_h2(sock, mode):
    cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8",
                                    validate_outbound_headers=False, validate_inbound_headers=False)
    conn = h2.connection.H2Connection(config=cfg)
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    paths = {}
    while True:
        data = sock.recv(65536)
        if not data:
            return
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError as err:
            log(f"protocol error from the client: {err!r}")
            return
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                paths[ev.stream_id] = dict(ev.headers).get(":path")
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                log(f"answering {paths.get(ev.stream_id)} on stream {ev.stream_id}: {mode}")
                answer(conn, ev.stream_id, mode)
        out = conn.data_to_send()
        if out:
            sock.sendall(out)


def handle(sock, mode):
    try:
        sock.settimeout(30)
        if mode == "not_http2":
            sock.recv(65536)  # the client's preface and SETTINGS
            log("answering a connection with junk")
            sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" + bytes(range(256)))
            return
        serve_h2(sock, mode)
    except OSError as err:
        log(f"connection ended: {err}")
    finally:
        sock.close()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=MODES, required=True)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        lsock.bind(("127.0.0.1", args.port))
    except OSError as err:
        log(f"cannot listen on {args.port}: {err}")
        return 1
    lsock.listen(64)
    log(f"listening on {lsock.getsockname()[1]}")
    while True:
        s, _ = lsock.accept()
        threading.Thread(target=handle, args=(s, args.mode), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
