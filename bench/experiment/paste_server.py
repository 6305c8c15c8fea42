#!/usr/bin/python3
"""The article's thread-pool server: Paste's httpserver.serve with C worker
threads (threadpool_workers=C) running the article's WSGI app, which
answers every request with the seed page as text/html.

    /usr/bin/python3 paste_server.py --concurrency C --port P [--host H] --page FILE

Everything else is Paste's default, as the article's code would get it:
request_queue_size=5 (the listen backlog), HTTP/1.0 (so no keep-alive),
a worker thread replaced after 100 requests, no access log. Prints
"peer-server: ready: ..." once listening; SIGTERM ends it.
"""
import os

from paste import httpserver

from seed_app import parse_args, seed_app

args = parse_args()
application = seed_app(args.page)

server = httpserver.serve(application, host=args.host, port=args.port,
                          threadpool_workers=args.concurrency, start_loop=False)
try:
    version = __import__("importlib.metadata").metadata.version("paste")
except Exception:  # pragma: no cover - an odd install
    version = "?"
print("peer-server: ready: Paste %s httpserver, threadpool_workers=%d, request_queue_size %d, "
      "listening on %s:%d, pid %d"
      % (version, args.concurrency, server.request_queue_size, args.host,
         server.server_address[1], os.getpid()), flush=True)
server.serve_forever()
