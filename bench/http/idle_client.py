#!/usr/bin/env python3
# bench/http/idle_client.py: open N keep-alive connections to HOST:PORT,
# send one GET on each, read each response whole (by its Content-Length),
# then hold them all idle: prints "held N" once they are, and exits (closing
# them) when stdin closes. Used by bench/http/idle_mem.sh, which runs
# several of these when N exceeds one process's descriptors.
#
#   idle_client.py HOST PORT N PATH [SOURCE_ADDR]
import os
import selectors
import socket
import sys

BATCH = 256  # connections in flight at once: never more than the backlog


def main():
    host, port, n, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    src = sys.argv[5] if len(sys.argv) > 5 else None
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, host)).encode()
    sel = selectors.DefaultSelector()
    held, started, inflight = [], 0, 0
    state = {}

    def start():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if src:
            s.bind((src, 0))
        s.setblocking(False)
        s.connect_ex((host, port))
        state[s] = [b"", False]
        sel.register(s, selectors.EVENT_WRITE)

    while len(held) < n:
        while started < n and inflight < BATCH:
            start()
            started += 1
            inflight += 1
        for key, ev in sel.select(timeout=30):
            s = key.fileobj
            st = state[s]
            if ev & selectors.EVENT_WRITE and not st[1]:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    sys.exit("idle_client: connect: %s" % os.strerror(err))
                s.send(req)
                st[1] = True
                sel.modify(s, selectors.EVENT_READ)
                continue
            data = s.recv(65536)
            if not data:
                sys.exit("idle_client: the server closed a connection")
            st[0] += data
            head, sep, body = st[0].partition(b"\r\n\r\n")
            if not sep:
                continue
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if not head.startswith(b"HTTP/1.1 200") or len(body) < length:
                if not head.startswith(b"HTTP/1.1 200"):
                    sys.exit("idle_client: answer: %r" % head[:40])
                continue
            sel.unregister(s)
            del state[s]
            held.append(s)
            inflight -= 1
    print("held %d" % len(held), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
