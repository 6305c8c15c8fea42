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
import os

from gevent.pywsgi import WSGIServer
import gevent

from seed_app import parse_args, seed_app

args = parse_args()
application = seed_app(args.page)

server = WSGIServer((args.host, args.port), application, spawn=args.concurrency, log=None)
server.start()
print("peer-server: ready: gevent %s pywsgi, spawn=%d, backlog %d, listening on %s:%d, pid %d"
      % (gevent.__version__, args.concurrency, server.backlog, args.host,
         server.server_port, os.getpid()), flush=True)
server.serve_forever()
