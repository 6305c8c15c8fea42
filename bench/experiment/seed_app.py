"""What the experiment's two Python peers share: their command line and the
article's WSGI app, which answers every request with the seed page as
text/html. Imported by gevent_server.py and paste_server.py (the script's
own directory is on sys.path)."""
import argparse


def parse_args():
    """--concurrency C --port P [--host H] --page FILE"""
    ap = argparse.ArgumentParser()
    ap.add_argument("--concurrency", type=int, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--page", required=True)
    return ap.parse_args()


def seed_app(page_file):
    """The article's app, serving the bytes of page_file (read once)."""
    with open(page_file, "rb") as f:
        page = f.read()
    headers = [("Content-Type", "text/html"), ("Content-Length", str(len(page)))]

    def application(environ, start_response):
        start_response("200 OK", headers)
        return [page]
    return application
