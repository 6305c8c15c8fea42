/* grove-load --doctor: the kernel and process limits that decide how many
 * connections a load test can hold, each with its value, the value to
 * have for 10,000 connections and more, why, and the command that sets
 * it. Reads only (/proc/sys, getrlimit); changes nothing. */
#define _GNU_SOURCE
#include "load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>

/* Connections the advice is for. */
#define TARGET_CONNS 10000

typedef struct check {
    const char *name; /* sysctl name, or what it is */
    char value[64];   /* as read; "" if unavailable */
    int ok;           /* 1 fine, 0 change it, -1 not applicable */
    char want[64];    /* value to set */
    const char *why;
    char fix[192]; /* the command */
} check;

/* The first line of /proc/sys/<name with dots as slashes>, tabs as spaces. */
static int read_sysctl(const char *name, char *out, size_t len)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof path, "/proc/sys/%s", name);
    for (char *p = path + 10; *p; p++)
        if (*p == '.')
            *p = '/';
    if (!(f = fopen(path, "r")))
        return -1;
    if (!fgets(out, (int)len, f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
    for (char *p = out; *p; p++)
        if (*p == '\t')
            *p = ' ';
    return 0;
}

int gl_port_range(int *lo, int *hi)
{
    char v[64];

    if (read_sysctl("net.ipv4.ip_local_port_range", v, sizeof v) != 0)
        return -1;
    return sscanf(v, "%d %d", lo, hi) == 2 ? 0 : -1;
}

static long long sysctl_num(check *c)
{
    if (read_sysctl(c->name, c->value, sizeof c->value) != 0) {
        c->ok = -1;
        return -1;
    }
    return atoll(c->value);
}

/* A sysctl that should be at least want. */
static void at_least(check *c, const char *name, long long want, const char *why)
{
    long long v;

    c->name = name;
    c->why = why;
    snprintf(c->want, sizeof c->want, ">= %lld", want);
    snprintf(c->fix, sizeof c->fix, "sysctl -w %s=%lld", name, want);
    if ((v = sysctl_num(c)) >= 0)
        c->ok = v >= want;
}

static void port_range(check *c)
{
    int lo, hi;

    c->name = "net.ipv4.ip_local_port_range";
    c->why = "each connection to one server address:port takes a local port of its own per "
             "source address, so this range caps the connections per source address; beyond "
             "it use grove-load -b 127.0.0.1-127.0.0.8 (several source addresses)";
    strcpy(c->want, "1024 65535");
    strcpy(c->fix, "sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"");
    if (gl_port_range(&lo, &hi) != 0) {
        c->ok = -1;
        return;
    }
    snprintf(c->value, sizeof c->value, "%d %d (%d ports)", lo, hi, hi - lo + 1);
    c->ok = hi - lo + 1 >= 2 * TARGET_CONNS;
}

static void tw_reuse(check *c)
{
    long long v;

    c->name = "net.ipv4.tcp_tw_reuse";
    c->why = "lets a new outgoing connection take a local port still in TIME_WAIT (safe with "
             "TCP timestamps); 2 does it for loopback only, enough for 127.0.0.0/8 targets";
    strcpy(c->want, "1 (or 2 for loopback)");
    strcpy(c->fix, "sysctl -w net.ipv4.tcp_tw_reuse=1");
    if ((v = sysctl_num(c)) >= 0)
        c->ok = v >= 1;
}

static void conntrack(check *c)
{
    char count[32];
    long long v;

    c->name = "net.netfilter.nf_conntrack_max";
    c->why = "with connection tracking loaded, every connection takes an entry (closed ones "
             "linger for minutes); when the table is full new connections are dropped "
             "(\"nf_conntrack: table full\" in dmesg)";
    snprintf(c->want, sizeof c->want, ">= %d", 262144);
    snprintf(c->fix, sizeof c->fix, "sysctl -w net.netfilter.nf_conntrack_max=%d", 262144);
    if ((v = sysctl_num(c)) < 0) {
        strcpy(c->value, "(not loaded: no limit)");
        return;
    }
    if (read_sysctl("net.netfilter.nf_conntrack_count", count, sizeof count) == 0)
        snprintf(c->value + strlen(c->value), sizeof c->value - strlen(c->value), " (%s in use)",
                 count);
    c->ok = v >= 262144;
}

static void nofile(check *c, check *hard)
{
    struct rlimit rl;

    getrlimit(RLIMIT_NOFILE, &rl);
    c->name = "RLIMIT_NOFILE (soft)";
    snprintf(c->value, sizeof c->value, "%llu", (unsigned long long)rl.rlim_cur);
    c->ok = -1;
    strcpy(c->want, "= the hard limit");
    c->why = "descriptors one process may open; grove-load raises it to the hard limit itself";
    strcpy(c->fix, "ulimit -n \"$(ulimit -Hn)\"");
    hard->name = "RLIMIT_NOFILE (hard)";
    if (rl.rlim_max == RLIM_INFINITY)
        strcpy(hard->value, "unlimited");
    else
        snprintf(hard->value, sizeof hard->value, "%llu", (unsigned long long)rl.rlim_max);
    hard->ok = rl.rlim_max >= TARGET_CONNS + GL_FD_RESERVE;
    snprintf(hard->want, sizeof hard->want, ">= connections per worker + %d", GL_FD_RESERVE);
    hard->why = "one descriptor per connection, per process: grove-load spreads -c over -w "
                "worker processes so each stays under it, and refuses a -c that cannot fit";
    strcpy(hard->fix, "ulimit -Hn 1048576 (as root; or LimitNOFILE= in a systemd unit, "
                      "nofile in /etc/security/limits.conf)");
}

static void max_map_count(check *c)
{
    struct utsname u;
    int major = 0, minor = 0;

    at_least(c, "vm.max_map_count", 262144,
             "green-thread stacks: before Linux 6.13 each guarded stack takes two memory "
             "mappings (grove guards stacks while they fit in half of this limit, then goes "
             "on unguarded); from 6.13 guard pages cost no mapping");
    if (uname(&u) == 0 && sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
        (major > 6 || (major == 6 && minor >= 13)) && c->ok == 0)
        c->ok = -1; /* lightweight guard regions: not a limit here */
}

static size_t collect(check *c)
{
    size_t n = 0;

    port_range(&c[n++]);
    tw_reuse(&c[n++]);
    at_least(&c[n++], "net.core.somaxconn", 4096,
             "the longest accept queue a server may ask for: a burst of new connections "
             "beyond the queue has its SYNs dropped and retried a second later");
    at_least(&c[n++], "net.ipv4.tcp_max_syn_backlog", 8192,
             "half-open connections a listener keeps while many connect at once (with "
             "syncookies on, an overflow still connects)");
    at_least(&c[n++], "net.ipv4.tcp_syncookies", 1,
             "connections still succeed when the SYN queue overflows");
    conntrack(&c[n++]);
    at_least(&c[n++], "fs.file-max", 4 * TARGET_CONNS + 100000,
             "descriptors open in the whole system: client and server each hold one per "
             "connection");
    at_least(&c[n++], "fs.nr_open", 1048576,
             "the highest a process's descriptor hard limit may be set to");
    nofile(&c[n], &c[n + 1]);
    n += 2;
    max_map_count(&c[n++]);
    return n;
}

static void print_text(FILE *f, const check *c, size_t n)
{
    fprintf(f, "grove-load --doctor: limits for many connections (advice for %d and more)\n\n",
            TARGET_CONNS);
    for (size_t i = 0; i < n; i++) {
        const char *mark = c[i].ok > 0 ? "ok  " : c[i].ok == 0 ? "LOW " : "info";

        fprintf(f, "[%s] %s = %s\n", mark, c[i].name, c[i].value[0] ? c[i].value : "?");
        fprintf(f, "       want %s: %s\n", c[i].want, c[i].why);
        if (c[i].ok == 0)
            fprintf(f, "       fix: %s\n", c[i].fix);
    }
    fputs("\nsysctl -w lasts until reboot; put the settings in /etc/sysctl.d/ to keep them.\n", f);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void print_json(FILE *f, const check *c, size_t n)
{
    fputs("{\"checks\": [", f);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ", {\"name\": " : "{\"name\": ", f);
        json_str(f, c[i].name);
        fputs(", \"value\": ", f);
        json_str(f, c[i].value);
        fprintf(f, ", \"ok\": %s, \"want\": ",
                c[i].ok > 0    ? "true"
                : c[i].ok == 0 ? "false"
                               : "null");
        json_str(f, c[i].want);
        fputs(", \"why\": ", f);
        json_str(f, c[i].why);
        fputs(", \"fix\": ", f);
        json_str(f, c[i].fix);
        fputs("}", f);
    }
    fputs("]}\n", f);
}

int gl_doctor(FILE *f, int json)
{
    check c[16];
    size_t n;

    memset(c, 0, sizeof c);
    n = collect(c);
    if (json)
        print_json(f, c, n);
    else
        print_text(f, c, n);
    return 0;
}
