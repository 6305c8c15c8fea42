#!/usr/bin/python3
"""The SO_REUSEPORT trap, measured (docs/supervisor.md#why-one-shared-listening-socket).

N connections are queued on a port that two workers listen on, then worker 0
goes away without accepting its queue (its listener is closed); worker 1 then
accepts everything it can and answers. With two SO_REUSEPORT sockets the
connections the kernel had put in worker 0's queue are reset; with one socket
shared by both (the supervisor's way) every one is served.

Usage: reuseport_trap.py [N [ROUNDS]]   (200 and 3); prints one JSON object.
"""
import json
import socket
import sys


def run(reuseport, n):
    ls, port = [], 0
    for _ in range(2 if reuseport else 1):
        s = socket.socket()
        if reuseport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", port))
        s.listen(4096)
        port = s.getsockname()[1]
        ls.append(s)
    if not reuseport:
        ls.append(ls[0].dup())  # the second worker's copy of the one socket
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    ls[0].close()  # worker 0 ends without accepting its queue
    alive, reset = [], 0
    for c in clients:
        try:
            c.sendall(b"x")
            alive.append(c)
        except ConnectionResetError:
            reset += 1
    srv = ls[1]
    srv.settimeout(0.5)
    while True:
        try:
            a, _ = srv.accept()
        except socket.timeout:
            break
        a.sendall(b"y")
        a.close()
    served = 0
    for c in alive:
        c.settimeout(1)
        try:
            served += c.recv(1) == b"y"
        except (ConnectionResetError, socket.timeout):
            reset += 1
    for c in clients:
        c.close()
    srv.close()
    return served, reset


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    out = {"connections": n, "rounds": rounds}
    for name, rp in (("reuseport", True), ("shared", False)):
        res = [run(rp, n) for _ in range(rounds)]
        out[name] = {"served": [r[0] for r in res], "reset": [r[1] for r in res]}
    print(json.dumps(out))


main()
