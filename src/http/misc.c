/* Small shared pieces: reason phrases, the Date header, options. */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *gr__http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}

/* Formatting a date costs more than the rest of a small response: do it
 * once a second per OS thread. The coarse clock is a memory read. The
 * names are English whatever the locale (strftime's %a and %b follow
 * LC_TIME): RFC 9110's IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT". */
const char *gr__http_date(void)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static __thread time_t cached_sec = -1;
    static __thread char cached[32];
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec != cached_sec) {
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(cached, sizeof cached, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
                 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        cached_sec = ts.tv_sec;
    }
    return cached;
}

static int64_t or_default(int64_t v, int64_t d)
{
    return v > 0 ? v : d;
}

int gr__http_cfg_init(gr__http_cfg *cfg, gr_http_handler handler, void *arg,
                      const gr_http_opts *opts)
{
    gr_http_opts o = opts ? *opts : (gr_http_opts){0};

    if (!handler || o.header_timeout_ms < 0 || o.idle_timeout_ms < 0 || o.body_timeout_ms < 0 ||
        o.write_timeout_ms < 0 || (o.max_header_bytes && o.max_header_bytes < 64) ||
        o.max_header_bytes > (1u << 30) || o.max_headers > 100000) {
        errno = EINVAL;
        return -1;
    }
    memset(cfg, 0, sizeof *cfg);
    cfg->handler = handler;
    cfg->arg = arg;
    cfg->max_header_bytes = o.max_header_bytes ? o.max_header_bytes : GR__HTTP_MAX_HEADER_BYTES;
    cfg->max_headers = o.max_headers ? o.max_headers : GR__HTTP_MAX_HEADERS;
    cfg->max_body = o.max_body ? o.max_body : GR__HTTP_MAX_BODY;
    cfg->header_timeout = or_default(o.header_timeout_ms, GR__HTTP_HEADER_TIMEOUT);
    cfg->idle_timeout = or_default(o.idle_timeout_ms, GR__HTTP_IDLE_TIMEOUT);
    cfg->body_timeout = or_default(o.body_timeout_ms, GR__HTTP_BODY_TIMEOUT);
    cfg->write_timeout = or_default(o.write_timeout_ms, GR__HTTP_WRITE_TIMEOUT);
    cfg->access_log = o.access_log;
    atomic_init(&cfg->stopping, 0);
    return 0;
}

int gr__http_header_ok(const gr_http_header *h)
{
    const unsigned char *p;

    if (!h->name || !h->value || !h->name[0])
        return 0;
    for (p = (const unsigned char *)h->name; *p; p++)
        if (!gr__http_tchar(*p))
            return 0;
    for (p = (const unsigned char *)h->value; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return 0;
    return 1;
}

char *gr__http_put_u64(char *o, uint64_t v)
{
    char d[24];
    size_t n = 0;

    do
        d[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    while (n)
        *o++ = d[--n];
    return o;
}
