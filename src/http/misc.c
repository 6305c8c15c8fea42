/* Small shared pieces: reason phrases, the Date header, options. */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Reason phrases, most frequent first: the lookup is a scan. */
static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {417, "Expectation Failed"},
    {426, "Upgrade Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *gr__http_reason(int status)
{
    for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "";
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
    cfg->tls = o.tls;
    atomic_init(&cfg->stopping, 0);
    atomic_init(&cfg->idle_until, 0);
    return 0;
}

#define T GR__HTTP_TCHAR
#define H GR__HTTP_HOSTCHAR
#define TH (GR__HTTP_TCHAR | GR__HTTP_HOSTCHAR)
/* tchar: ALPHA DIGIT ! # $ % & ' * + - . ^ _ ` | ~; host: ALPHA DIGIT
 * - . _ ~ % ! $ & ' ( ) * + , ; = (a reg-name's unreserved, pct-encoded
 * and sub-delims, RFC 3986 3.2.2). */
const unsigned char gr__http_chars[256] = {
    ['!'] = TH, ['#'] = T,  ['$'] = TH, ['%'] = TH, ['&'] = TH, ['\''] = TH, ['('] = H,  [')'] = H,
    ['*'] = TH, ['+'] = TH, [','] = H,  ['-'] = TH, ['.'] = TH, [';'] = H,   ['='] = H,  ['^'] = T,
    ['_'] = TH, ['`'] = T,  ['|'] = T,  ['~'] = TH, ['0'] = TH, ['1'] = TH,  ['2'] = TH, ['3'] = TH,
    ['4'] = TH, ['5'] = TH, ['6'] = TH, ['7'] = TH, ['8'] = TH, ['9'] = TH,  ['A'] = TH, ['B'] = TH,
    ['C'] = TH, ['D'] = TH, ['E'] = TH, ['F'] = TH, ['G'] = TH, ['H'] = TH,  ['I'] = TH, ['J'] = TH,
    ['K'] = TH, ['L'] = TH, ['M'] = TH, ['N'] = TH, ['O'] = TH, ['P'] = TH,  ['Q'] = TH, ['R'] = TH,
    ['S'] = TH, ['T'] = TH, ['U'] = TH, ['V'] = TH, ['W'] = TH, ['X'] = TH,  ['Y'] = TH, ['Z'] = TH,
    ['a'] = TH, ['b'] = TH, ['c'] = TH, ['d'] = TH, ['e'] = TH, ['f'] = TH,  ['g'] = TH, ['h'] = TH,
    ['i'] = TH, ['j'] = TH, ['k'] = TH, ['l'] = TH, ['m'] = TH, ['n'] = TH,  ['o'] = TH, ['p'] = TH,
    ['q'] = TH, ['r'] = TH, ['s'] = TH, ['t'] = TH, ['u'] = TH, ['v'] = TH,  ['w'] = TH, ['x'] = TH,
    ['y'] = TH, ['z'] = TH,
};
#undef T
#undef H
#undef TH

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

size_t gr__http_list_count(const char *list, const char *token, size_t *others)
{
    size_t len = strlen(token), count = 0;

    *others = 0;
    while (*list) {
        size_t n;

        list += strspn(list, " \t,");
        n = strcspn(list, ",");
        while (n && (list[n - 1] == ' ' || list[n - 1] == '\t'))
            n--;
        if (n == len && !strncasecmp(list, token, n))
            count++;
        else if (n)
            ++*others;
        list += n;
        list += strcspn(list, ",");
    }
    return count;
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
