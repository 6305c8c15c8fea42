#!/usr/bin/python3
"""The article's gevent server: gevent's pywsgi WSGIServer with spawn=C (a
pool of C greenlets) running the article's WSGI app, which answers every
request with the seed page as text/html.

    /usr/bin/python3 gevent_server.py --concurrency C --port P [--host H] --page FILE

Defaults as the article's code would get them: StreamServer's listen
backlog (128 in gevent 22.10), no monkey patching (the app does no I/O).
One change: the access log is off (log=None), as it is for every other
server in the experiment; with it, gevent would also write a line per
request. Prints "peer-server: ready: ..." once listening; SIGTERM ends it.
"""
import argparse
import os
import sys

from gevent.pywsgi import WSGIServer
import gevent

ap = argparse.ArgumentParser()
ap.add_argument("--concurrency", type=int, required=True)
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--page", required=True)
args = ap.parse_args()

with open(args.page, "rb") as f:
    PAGE = f.read()


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html"),
                              ("Content-Length", str(len(PAGE)))])
    return [PAGE]


server = WSGIServer((args.host, args.port), application, spawn=args.concurrency, log=None)
server.start()
print("peer-server: ready: gevent %s pywsgi, spawn=%d, backlog %d, listening on %s:%d, pid %d"
      % (gevent.__version__, args.concurrency, server.backlog, args.host,
         server.server_port, os.getpid()), flush=True)
server.serve_forever()
