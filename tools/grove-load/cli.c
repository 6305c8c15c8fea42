/* grove-load's command line (ab's flags and a few of its own), the URL,
 * the source addresses, and the request, built once. Every mistake is
 * reported on stderr with what was wrong, and exits 2. */
#define _GNU_SOURCE
#include "load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void gl_vfail(int status, const char *tail, const char *fmt, va_list ap)
{
    fputs("grove-load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n%s", tail);
    exit(status);
}

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void bad(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    gl_vfail(2, "Try 'grove-load --help' for the options.\n", fmt, ap);
}

void gl_usage(FILE *f)
{
    fputs("Usage: grove-load [options] http[s]://host[:port][/path]\n"
          "An HTTP/1.1 load generator: ab's options, several processes, shared statistics.\n"
          "\n"
          "ab's options:\n"
          "  -n requests     requests to perform (default 1; 50000 with -t, as ab)\n"
          "  -c concurrency  connections at once (default 1)\n"
          "  -t seconds      time limit (implies -n 50000 unless -n is given, as ab)\n"
          "  -k              keep-alive: reuse connections (HTTP/1.1); without it every\n"
          "                  request opens a new connection (HTTP/1.0, as ab)\n"
          "  -r              do not stop at socket errors (count them and go on)\n"
          "  -H 'Name: value'  add a request header (repeatable; replaces Host,\n"
          "                  User-Agent, Accept)\n"
          "  -p file         POST the file's contents   -u file  PUT them\n"
          "  -T type         Content-Type of the body (default text/plain)\n"
          "  -m method       request method            -i  HEAD requests\n"
          "  -s seconds      time-out of each request (default 30)\n"
          "  -q              no status line             -l  accepted, no effect\n"
          "\n"
          "Beyond ab:\n"
          "  -d duration     run for this long, without a request limit (10, 10s, 2m, 1h)\n"
          "  -w workers      worker processes (default: one per usable CPU, more if\n"
          "                  the connections need more descriptors than one process has)\n"
          "  -b addrs        source addresses to spread connections over, such as\n"
          "                  127.0.0.1-127.0.0.8 or 10.0.0.1,10.0.0.2\n"
          "  --rate R        send R requests/s in all, latency counted from when each\n"
          "                  was due (coordinated omission corrected)\n"
          "  --json          print the report as one JSON object\n"
          "  --progress, --no-progress  the status line, once a second (default on)\n"
          "  --close rst|fin|now  how a connection that is not kept ends (default rst:\n"
          "                  wait for the server's close, then reset; see the docs)\n"
          "  --spin US       poll this long before a worker sleeps (default 3; 0 never)\n"
          "  --insecure      https: do not verify the server's certificate (self-signed)\n"
          "  --tls-resume    https: resume TLS sessions on new connections (default: a\n"
          "                  full handshake each, as ab)\n"
          "  --doctor        check the system's limits for many connections\n"
          "  -h, --help      this text               -V, --version\n",
          f);
}

/* ------------------------------------------------------------- numbers */

static uint64_t parse_count(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < min || v > max)
        bad("%s wants a whole number from %llu to %llu, not '%s'", opt, (unsigned long long)min,
            (unsigned long long)max, s);
    return v;
}

static double parse_real(const char *opt, const char *s, double min, double max)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        bad("%s wants a number from %g to %g, not '%s'", opt, min, max, s);
    return v;
}

/* wrk's durations: "10", "10s", "500ms", "2m", "1h". */
static double parse_duration(const char *opt, const char *s)
{
    char num[64], *end;
    double v, unit = 1;
    size_t n = strlen(s);

    if (n == 0 || n >= sizeof num)
        bad("%s wants a duration such as 10, 10s, 2m or 1h, not '%s'", opt, s);
    memcpy(num, s, n + 1);
    if (n > 2 && !strcmp(num + n - 2, "ms"))
        unit = 0.001, num[n - 2] = '\0';
    else if (num[n - 1] == 's')
        num[n - 1] = '\0';
    else if (num[n - 1] == 'm')
        unit = 60, num[n - 1] = '\0';
    else if (num[n - 1] == 'h')
        unit = 3600, num[n - 1] = '\0';
    errno = 0;
    v = strtod(num, &end);
    if (errno || end == num || *end || !isfinite(v) || v <= 0 || v * unit > 365 * 86400.0)
        bad("%s wants a duration such as 10, 10s, 2m or 1h, not '%s'", opt, s);
    return v * unit;
}

/* ------------------------------------------------------------- options */

enum {
    OPT_RATE = 1000,
    OPT_JSON,
    OPT_PROGRESS,
    OPT_NO_PROGRESS,
    OPT_DOCTOR,
    OPT_CLOSE,
    OPT_SPIN,
    OPT_INSECURE,
    OPT_TLS_RESUME
};

static const struct option long_opts[] = {
    {"rate", required_argument, NULL, OPT_RATE},
    {"json", no_argument, NULL, OPT_JSON},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"doctor", no_argument, NULL, OPT_DOCTOR},
    {"close", required_argument, NULL, OPT_CLOSE},
    {"spin", required_argument, NULL, OPT_SPIN},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"tls-resume", no_argument, NULL, OPT_TLS_RESUME},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void set_body(gl_opts *o, const char *file, const char *method)
{
    if (o->body_file)
        bad("-p and -u each give the body: use one");
    o->body_file = file;
    if (!o->method)
        o->method = method;
}

static int parse_close_mode(const char *s)
{
    if (!strcmp(s, "rst"))
        return GL_CLOSE_RST;
    if (!strcmp(s, "fin"))
        return GL_CLOSE_FIN;
    if (!strcmp(s, "now"))
        return GL_CLOSE_NOW;
    bad("--close is rst, fin or now, not '%s'", s);
}

static void take_option(gl_opts *o, int ch, const char *arg, int *head)
{
    switch (ch) {
    case 'n':
        o->requests = parse_count("-n", arg, 1, UINT64_C(1) << 62);
        o->n_given = 1;
        break;
    case 'c':
        o->concurrency = (size_t)parse_count("-c", arg, 1, 10000000);
        break;
    case 't':
        o->timelimit_s = parse_real("-t", arg, 0.001, 365 * 86400.0);
        break;
    case 'd':
        o->timelimit_s = parse_duration("-d", arg);
        o->unbounded = 1;
        break;
    case 's':
        o->timeout_s = parse_real("-s", arg, 0.001, 86400);
        break;
    case 'w':
        o->workers = (int)parse_count("-w", arg, 1, GL_MAX_WORKERS);
        break;
    case 'k':
        o->keepalive = 1;
        break;
    case 'r':
        o->keep_going = 1;
        break;
    case 'q':
        o->quiet = 1;
        break;
    case 'l':
        break; /* ab: accept variable document lengths; never checked here */
    case 'i':
        *head = 1;
        break;
    case 'm':
        o->method = arg;
        break;
    case 'p':
        set_body(o, arg, "POST");
        break;
    case 'u':
        set_body(o, arg, "PUT");
        break;
    case 'T':
        o->content_type = arg;
        break;
    case 'b':
        o->sources = arg;
        break;
    case 'H':
        if (o->nheaders == sizeof o->headers / sizeof o->headers[0])
            bad("too many -H headers (at most 64)");
        o->headers[o->nheaders++] = arg;
        break;
    case OPT_RATE:
        o->rate = parse_real("--rate", arg, 0.001, 1e9);
        break;
    case OPT_JSON:
        o->json = 1;
        break;
    case OPT_PROGRESS:
        o->progress = 1;
        break;
    case OPT_NO_PROGRESS:
        o->progress = 0;
        break;
    case OPT_DOCTOR:
        o->doctor = 1;
        break;
    case OPT_CLOSE:
        o->close_mode = parse_close_mode(arg);
        break;
    case OPT_SPIN:
        o->spin_us = (int)parse_count("--spin", arg, 0, GR_IDLE_SPIN_MAX_US);
        break;
    case OPT_INSECURE:
        o->insecure = 1;
        break;
    case OPT_TLS_RESUME:
        o->tls_resume = 1;
        break;
    case 'h':
        gl_usage(stdout);
        exit(0);
    case 'V':
        printf("grove-load %s (grove %d.%d.%d)\n", GL_VERSION, GROVE_VERSION_MAJOR,
               GROVE_VERSION_MINOR, GROVE_VERSION_PATCH);
        exit(0);
    default:
        bad("unknown option (see below)");
    }
}

/* Checks between options, after all are read. */
static void check_options(gl_opts *o, int head)
{
    if (head) {
        if (o->body_file)
            bad("-i (HEAD) cannot send a body (-p/-u)");
        if (!o->method)
            o->method = "HEAD";
    }
    if (!o->method)
        o->method = "GET";
    for (const char *m = o->method; *m; m++)
        if (*m <= ' ' || *m >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", *m))
            bad("-m: '%s' is not a method name", o->method);
    if (!*o->method)
        bad("-m: empty method");
    if (o->unbounded && o->n_given)
        bad("-d runs for a duration without a request limit: use -t with -n for both");
    if (o->timelimit_s > 0 && !o->n_given && !o->unbounded)
        o->requests = 50000; /* ab's -t */
    if (o->unbounded)
        o->requests = 0;
    else if (!o->requests)
        o->requests = 1;
    if (!o->concurrency)
        o->concurrency = 1;
    if (o->requests && o->concurrency > o->requests)
        bad("-c %zu is more than the %llu requests to make (-n): lower -c or raise -n",
            o->concurrency, (unsigned long long)o->requests);
    if (o->workers && (size_t)o->workers > o->concurrency)
        bad("-w %d is more workers than connections (-c %zu)", o->workers, o->concurrency);
    if (!o->timeout_s)
        o->timeout_s = 30;
}

int gl_parse_args(int argc, char **argv, gl_opts *o)
{
    int ch, head = 0;

    *o = (gl_opts){.progress = -1, .close_mode = GL_CLOSE_RST, .spin_us = GL_SPIN_US};
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":n:c:t:d:s:w:krqlim:p:u:T:b:H:hV", long_opts, NULL)) !=
           -1) {
        if (ch == '?')
            bad("unknown option %s", argv[optind - 1]);
        if (ch == ':')
            bad("option %s wants a value", argv[optind - 1]);
        take_option(o, ch, optarg, &head);
    }
    if (o->doctor)
        return 0;
    if (optind == argc)
        bad("no URL given (such as http://127.0.0.1:8080/)");
    if (optind + 1 < argc)
        bad("one URL, last; unexpected '%s'", argv[optind + 1]);
    o->url = argv[optind];
    check_options(o, head);
    return 0;
}

/* ------------------------------------------------------------- URL */

static void parse_authority(gl_target *t, const char *a, size_t n)
{
    const char *colon = NULL, *host = a;
    size_t hn;

    if (memchr(a, '@', n))
        bad("user names and passwords in the URL are not supported (send -H 'Authorization: ...')");
    if (n && a[0] == '[') {
        const char *close = memchr(a, ']', n);

        if (!close)
            bad("bad URL: '[' without ']' in the host");
        host = a + 1;
        hn = (size_t)(close - host);
        if (close + 1 < a + n) {
            if (close[1] != ':')
                bad("bad URL: unexpected text after ']'");
            colon = close + 1;
        }
    } else {
        colon = memchr(a, ':', n);
        hn = colon ? (size_t)(colon - a) : n;
    }
    if (hn == 0 || hn >= sizeof t->host)
        bad("bad URL: no host");
    memcpy(t->host, host, hn);
    t->host[hn] = '\0';
    t->port = t->tls ? 443 : 80;
    if (colon) {
        char port[8];
        size_t pn = (size_t)(a + n - colon - 1);

        if (pn == 0 || pn >= sizeof port)
            bad("bad URL: the port is not a number from 1 to 65535");
        memcpy(port, colon + 1, pn);
        port[pn] = '\0';
        t->port = (int)parse_count("the URL's port", port, 1, 65535);
    }
    snprintf(t->port_str, sizeof t->port_str, "%d", t->port);
}

static void parse_url(const gl_opts *o, gl_target *t)
{
    const char *u = o->url, *a, *p;
    size_t an, pn;

    t->tls = !strncasecmp(u, "https://", 8);
    if (!t->tls && strncasecmp(u, "http://", 7))
        bad("'%s' is not an http:// or https:// URL", u);
    a = u + (t->tls ? 8 : 7);
    an = strcspn(a, "/?#");
    parse_authority(t, a, an);
    p = a + an;
    pn = strcspn(p, "#");
    if (pn + 2 > sizeof t->path)
        bad("the URL's path is longer than %zu bytes", sizeof t->path - 2);
    for (size_t i = 0; i < pn; i++)
        if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f)
            bad("the URL has a space or control character: percent-encode it");
    t->path[0] = '/';
    memcpy(t->path + (p[0] != '/'), p, pn);
    t->path[pn + (p[0] != '/')] = '\0';
}

static void resolve(gl_target *t)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res;
    int rc = getaddrinfo(t->host, t->port_str, &hints, &res);

    if (rc != 0) {
        fprintf(stderr, "grove-load: cannot resolve %s: %s\n", t->host, gai_strerror(rc));
        exit(1);
    }
    memcpy(&t->addr.u, res->ai_addr, res->ai_addrlen);
    t->addr.len = res->ai_addrlen;
    freeaddrinfo(res);
}

/* ------------------------------------------------------------- -b */

static void add_source(gl_target *t, const gr_addr *a)
{
    if (t->nsources == GL_MAX_SOURCES)
        bad("-b: more than %d source addresses", GL_MAX_SOURCES);
    t->sources[t->nsources++] = *a;
}

/* "A" or "A-B" (IPv4 ranges only). */
static void add_sources(gl_target *t, char *item)
{
    char *dash = strchr(item, '-');
    gr_addr a;

    if (!dash) {
        if (gr_addr_ip(&a, item, 0) != 0)
            bad("-b: '%s' is not a numeric IP address", item);
        add_source(t, &a);
        return;
    }
    *dash = '\0';
    struct in_addr lo, hi;

    if (inet_pton(AF_INET, item, &lo) != 1 || inet_pton(AF_INET, dash + 1, &hi) != 1)
        bad("-b: '%s-%s' is not a range of IPv4 addresses", item, dash + 1);
    uint32_t from = ntohl(lo.s_addr), to = ntohl(hi.s_addr);

    if (from > to || to - from >= GL_MAX_SOURCES)
        bad("-b: '%s-%s' is not a range of at most %d addresses, low to high", item, dash + 1,
            GL_MAX_SOURCES);
    for (uint64_t x = from; x <= to; x++) {
        a = (gr_addr){.len = sizeof(struct sockaddr_in)};
        a.u.in4.sin_family = AF_INET;
        a.u.in4.sin_addr.s_addr = htonl((uint32_t)x);
        add_source(t, &a);
    }
}

static void parse_sources(const gl_opts *o, gl_target *t)
{
    char buf[4096], *save, *item;

    if (!o->sources)
        return;
    if (strlen(o->sources) >= sizeof buf)
        bad("-b: list too long");
    strcpy(buf, o->sources);
    for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save))
        add_sources(t, item);
    if (!t->nsources)
        bad("-b: no address given");
    for (size_t i = 0; i < t->nsources; i++)
        if (t->sources[i].u.sa.sa_family != t->addr.u.sa.sa_family)
            bad("-b: the source addresses must be of the target's family (%s)",
                t->addr.u.sa.sa_family == AF_INET ? "IPv4" : "IPv6");
}

/* ------------------------------------------------------------- request */

static const char *user_header(const gl_opts *o, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < o->nheaders; i++)
        if (!strncasecmp(o->headers[i], name, n) && o->headers[i][n] == ':')
            return o->headers[i];
    return NULL;
}

static void check_header(const char *h)
{
    const char *colon = strchr(h, ':');

    if (!colon || colon == h)
        bad("-H '%s': want 'Name: value'", h);
    for (const char *p = h; p < colon; p++)
        if (*p <= ' ' || *p >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", *p))
            bad("-H '%s': the name is not a header name", h);
    for (const char *p = colon; *p; p++)
        if ((*p < ' ' && *p != '\t') || *p == 0x7f)
            bad("-H '%s': control characters are not allowed", h);
    if (!strncasecmp(h, "Content-Length:", 15) || !strncasecmp(h, "Transfer-Encoding:", 18))
        bad("-H '%s': grove-load frames the body itself (-p/-u)", h);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;

    if (!f) {
        fprintf(stderr, "grove-load: cannot read %s: %s\n", path, strerror(errno));
        exit(1);
    }
    for (;;) {
        if (n == cap && !(buf = realloc(buf, cap = cap ? cap * 2 : 65536))) {
            fprintf(stderr, "grove-load: %s: out of memory\n", path);
            exit(1);
        }
        size_t got = fread(buf + n, 1, cap - n, f);

        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "grove-load: cannot read %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Append to a growing string; exits on no memory. */
static void put(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        while (*len + n + 1 > *cap)
            *cap = *cap ? *cap * 2 : 1024;
        if (!(*buf = realloc(*buf, *cap))) {
            fputs("grove-load: out of memory\n", stderr);
            exit(1);
        }
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static void puts_(char **b, size_t *l, size_t *c, const char *s)
{
    put(b, l, c, s, strlen(s));
}

/* The request, as ab would send it: HTTP/1.0 without keep-alive (the
 * server closes after each response), HTTP/1.1 with -k. */
static void build_request(const gl_opts *o, gl_target *t)
{
    char *req = NULL, *body = NULL, line[512];
    size_t len = 0, cap = 0, blen = 0;
    int v6 = strchr(t->host, ':') != NULL;

    for (size_t i = 0; i < o->nheaders; i++)
        check_header(o->headers[i]);
    if (o->body_file)
        body = read_file(o->body_file, &blen);
    snprintf(line, sizeof line, "%s ", o->method);
    puts_(&req, &len, &cap, line);
    puts_(&req, &len, &cap, t->path);
    puts_(&req, &len, &cap, o->keepalive ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");
    if (!user_header(o, "Host")) {
        snprintf(line, sizeof line, "Host: %s%s%s", v6 ? "[" : "", t->host, v6 ? "]" : "");
        puts_(&req, &len, &cap, line);
        if (t->port != 80) {
            snprintf(line, sizeof line, ":%d", t->port);
            puts_(&req, &len, &cap, line);
        }
        puts_(&req, &len, &cap, "\r\n");
    }
    if (!user_header(o, "User-Agent"))
        puts_(&req, &len, &cap, "User-Agent: grove-load/" GL_VERSION "\r\n");
    if (!user_header(o, "Accept"))
        puts_(&req, &len, &cap, "Accept: */*\r\n");
    for (size_t i = 0; i < o->nheaders; i++) {
        puts_(&req, &len, &cap, o->headers[i]);
        puts_(&req, &len, &cap, "\r\n");
    }
    if ((body || o->content_type) && !user_header(o, "Content-Type")) {
        snprintf(line, sizeof line, "Content-Type: %.400s\r\n",
                 o->content_type ? o->content_type : "text/plain");
        puts_(&req, &len, &cap, line);
    }
    if (body || !strcmp(o->method, "POST") || !strcmp(o->method, "PUT") ||
        !strcmp(o->method, "PATCH")) {
        snprintf(line, sizeof line, "Content-Length: %zu\r\n", blen);
        puts_(&req, &len, &cap, line);
    }
    puts_(&req, &len, &cap, "\r\n");
    if (blen)
        put(&req, &len, &cap, body, blen);
    free(body);
    t->request = req;
    t->request_len = len;
    t->head_only = !strcmp(o->method, "HEAD");
}

int gl_build_target(const gl_opts *o, gl_target *t)
{
    memset(t, 0, sizeof *t);
    parse_url(o, t);
    resolve(t);
    parse_sources(o, t);
    build_request(o, t);
    return 0;
}
