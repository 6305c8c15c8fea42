/* The final report: the workers' slots summed, then printed as ab prints
 * its report (same labels, so scripts that read ab's output read this
 * one), or as one JSON object (--json).
 *
 * Counting: every request handed out ends either completed (a whole
 * response came, whatever its status) or failed with one socket-level
 * kind; non-2xx responses are completed requests that also count as
 * failed in JSON's failed.total (the definition), while the text
 * keeps ab's split: "Failed requests" are the socket-level ones, and
 * "Non-2xx responses" are listed apart. */
#include "load.h"

#include <stdio.h>
#include <string.h>

const char *const gl_fail_name[GL_F_KINDS] = {
    "connect", "read", "write", "timeout", "closed_early", "protocol",
};

static const char *const fail_label[GL_F_KINDS] = {
    "Connect", "Read", "Write", "Timeout", "Closed early", "Protocol",
};

static void add_counters(gl_slot *d, const gl_slot *s)
{
    d->completed += s->completed;
    for (int k = 0; k < 6; k++)
        d->status[k] += s->status[k];
    for (int k = 0; k < GL_F_KINDS; k++)
        d->fail[k] += s->fail[k];
    d->bytes += s->bytes;
    d->body_bytes += s->body_bytes;
    d->connects += s->connects;
    d->reconnects += s->reconnects;
    d->keepalive_reqs += s->keepalive_reqs;
}

void gl_sum(const gl_run *r, int64_t last_exit_ns, gl_totals *tot)
{
    int64_t end = r->t0_ns;

    memset(tot, 0, sizeof *tot);
    tot->s.doc_len = -1;
    tot->abort_kind = -1;
    for (int i = 0; i < r->nworkers; i++) {
        const gl_slot *s = &r->shm->slots[i];
        int64_t e = __atomic_load_n(&s->done, __ATOMIC_ACQUIRE) ? s->end_ns : last_exit_ns;

        add_counters(&tot->s, s);
        gl_hist_merge(&tot->s.total, &s->total);
        gl_hist_merge(&tot->s.connect, &s->connect);
        gl_hist_merge(&tot->s.waiting, &s->waiting);
        gl_hist_merge(&tot->s.processing, &s->processing);
        if (tot->s.doc_len < 0 && s->doc_len >= 0) {
            tot->s.doc_len = s->doc_len;
            memcpy(tot->s.server, s->server, sizeof s->server);
        }
        if (tot->abort_kind < 0 && s->abort_kind >= 0) {
            tot->abort_kind = s->abort_kind;
            tot->abort_errno = s->abort_errno;
        }
        if (!tot->setup_errno)
            tot->setup_errno = s->setup_errno;
        if (e > end)
            end = e;
    }
    /* A -d run ends at its time limit, not at its last worker's exit. */
    if (r->end_ns && end > r->end_ns && !r->o->requests)
        end = r->end_ns;
    tot->duration_s = end > r->t0_ns ? (double)(end - r->t0_ns) / 1e9 : 1e-9;
}

static uint64_t failed_sockets(const gl_slot *s)
{
    uint64_t n = 0;

    for (int k = 0; k < GL_F_KINDS; k++)
        n += s->fail[k];
    return n;
}

static uint64_t non_2xx(const gl_slot *s)
{
    return s->completed - s->status[2];
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

/* ------------------------------------------------------------- text */

static void conn_row(FILE *f, const char *label, const gl_hist *h)
{
    fprintf(f, "%-11s %8.3f %8.3f %6.3f %8.3f %8.3f\n", label, ms(h->min_ns), gl_hist_mean(h) / 1e6,
            gl_hist_stddev(h) / 1e6, ms(gl_hist_percentile(h, 50)), ms(h->max_ns));
}

static void percentiles_text(FILE *f, const gl_hist *h, int rate)
{
    static const double p[] = {50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99};

    fprintf(f, "\nPercentage of the requests served within a certain time (ms)%s\n",
            rate ? ", from the intended send time" : "");
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        fprintf(f, " %6g%% %10.3f\n", p[i], ms(gl_hist_percentile(h, p[i])));
    fprintf(f, " %6s%% %10.3f (longest request)\n", "100", ms(h->max_ns));
}

static void failures_text(FILE *f, const gl_slot *s)
{
    uint64_t failed = failed_sockets(s);

    fprintf(f, "Failed requests:        %llu\n", (unsigned long long)failed);
    if (failed) {
        fputs("   (", f);
        for (int k = 0; k < GL_F_KINDS; k++)
            fprintf(f, "%s%s: %llu", k ? ", " : "", fail_label[k], (unsigned long long)s->fail[k]);
        fputs(")\n", f);
    }
    if (non_2xx(s))
        fprintf(f, "Non-2xx responses:      %llu\n", (unsigned long long)non_2xx(s));
}

void gl_report_text(FILE *f, const gl_run *r, const gl_totals *t)
{
    const gl_opts *o = r->o;
    const gl_slot *s = &t->s;
    double d = t->duration_s, done = (double)s->completed;

    if (s->server[0])
        fprintf(f, "Server Software:        %s\n", s->server);
    fprintf(f, "Server Hostname:        %s\nServer Port:            %d\n\n", r->t->host,
            r->t->port);
    fprintf(f, "Document Path:          %s\n", r->t->path);
    fprintf(f, "Document Length:        %lld bytes\n\n",
            (long long)(s->doc_len < 0 ? 0 : s->doc_len));
    fprintf(f, "Concurrency Level:      %zu\n", o->concurrency);
    fprintf(f, "Time taken for tests:   %.3f seconds\n", d);
    fprintf(f, "Complete requests:      %llu\n", (unsigned long long)s->completed);
    failures_text(f, s);
    if (o->keepalive)
        fprintf(f, "Keep-Alive requests:    %llu\n", (unsigned long long)s->keepalive_reqs);
    fprintf(f, "Total transferred:      %llu bytes\n", (unsigned long long)s->bytes);
    fprintf(f, "HTML transferred:       %llu bytes\n", (unsigned long long)s->body_bytes);
    fprintf(f, "Requests per second:    %.2f [#/sec] (mean)\n", done / d);
    fprintf(f, "Time per request:       %.3f [ms] (mean)\n",
            done ? (double)o->concurrency * d * 1000 / done : 0.0);
    fprintf(f, "Time per request:       %.3f [ms] (mean, across all concurrent requests)\n",
            done ? d * 1000 / done : 0.0);
    fprintf(f, "Transfer rate:          %.2f [Kbytes/sec] received\n", (double)s->bytes / 1024 / d);
    fprintf(f, "Workers:                %d processes, %llu connections opened\n", r->nworkers,
            (unsigned long long)s->connects);
    if (o->rate > 0)
        fprintf(f, "Rate:                   %.2f [#/sec] asked for\n", o->rate);
    if (t->interrupted)
        fputs("Interrupted:            the run was stopped before its end\n", f);
    if (!s->completed)
        return;
    if (!o->keepalive) {
        fprintf(f, "\nConnection Times (ms)\n%-11s %8s %8s %6s %8s %8s\n", "", "min", "mean",
                "[+/-sd]", "median", "max");
        conn_row(f, "Connect:", &s->connect);
        conn_row(f, "Processing:", &s->processing);
        conn_row(f, "Waiting:", &s->waiting);
        conn_row(f, "Total:", &s->total);
    }
    percentiles_text(f, &s->total, o->rate > 0);
}

/* ------------------------------------------------------------- JSON */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void json_latency(FILE *f, const char *key, const gl_hist *h)
{
    fprintf(f,
            "\"%s\": {\"count\": %llu, \"min\": %.4f, \"mean\": %.4f, \"stdev\": %.4f, "
            "\"max\": %.4f, \"p50\": %.4f, \"p75\": %.4f, \"p90\": %.4f, \"p99\": %.4f, "
            "\"p99_9\": %.4f, \"p99_99\": %.4f}",
            key, (unsigned long long)h->n, ms(h->n ? h->min_ns : 0), gl_hist_mean(h) / 1e6,
            gl_hist_stddev(h) / 1e6, ms(h->max_ns), ms(gl_hist_percentile(h, 50)),
            ms(gl_hist_percentile(h, 75)), ms(gl_hist_percentile(h, 90)),
            ms(gl_hist_percentile(h, 99)), ms(gl_hist_percentile(h, 99.9)),
            ms(gl_hist_percentile(h, 99.99)));
}

static void json_failed(FILE *f, const gl_slot *s)
{
    fprintf(f, "\"failed\": {\"total\": %llu",
            (unsigned long long)(failed_sockets(s) + non_2xx(s)));
    for (int k = 0; k < GL_F_KINDS; k++)
        fprintf(f, ", \"%s\": %llu", gl_fail_name[k], (unsigned long long)s->fail[k]);
    fprintf(f, ", \"non_2xx\": %llu}", (unsigned long long)non_2xx(s));
}

void gl_report_json(FILE *f, const gl_run *r, const gl_totals *t)
{
    const gl_opts *o = r->o;
    const gl_slot *s = &t->s;
    double d = t->duration_s;

    fputs("{\"tool\": \"grove-load\", \"version\": \"" GL_VERSION "\", \"url\": ", f);
    json_string(f, o->url);
    fputs(", \"method\": ", f);
    json_string(f, o->method);
    fprintf(f, ", \"keep_alive\": %s, \"concurrency\": %zu, \"workers\": %d",
            o->keepalive ? "true" : "false", o->concurrency, r->nworkers);
    fprintf(f, ", \"requests\": %llu, \"completed\": %llu, ",
            (unsigned long long)(s->completed + failed_sockets(s)),
            (unsigned long long)s->completed);
    json_failed(f, s);
    fprintf(f,
            ", \"status\": {\"1xx\": %llu, \"2xx\": %llu, \"3xx\": %llu, \"4xx\": %llu, "
            "\"5xx\": %llu, \"other\": %llu}",
            (unsigned long long)s->status[1], (unsigned long long)s->status[2],
            (unsigned long long)s->status[3], (unsigned long long)s->status[4],
            (unsigned long long)s->status[5], (unsigned long long)s->status[0]);
    fprintf(f,
            ", \"duration_s\": %.6f, \"requests_per_sec\": %.2f, \"transfer_bytes_per_sec\": %.1f",
            d, (double)s->completed / d, (double)s->bytes / d);
    fprintf(f, ", \"bytes_received\": %llu, \"body_bytes\": %llu, \"document_length\": %lld",
            (unsigned long long)s->bytes, (unsigned long long)s->body_bytes,
            (long long)(s->doc_len < 0 ? 0 : s->doc_len));
    fputs(", \"server\": ", f);
    json_string(f, s->server);
    fprintf(f,
            ", \"connections_opened\": %llu, \"reconnects\": %llu, \"keep_alive_requests\": %llu",
            (unsigned long long)s->connects, (unsigned long long)s->reconnects,
            (unsigned long long)s->keepalive_reqs);
    if (o->rate > 0)
        fprintf(f, ", \"rate\": %.3f", o->rate);
    else
        fputs(", \"rate\": null", f);
    fputs(", ", f);
    json_latency(f, "latency_ms", &s->total);
    if (!o->keepalive) {
        fputs(", ", f);
        json_latency(f, "connect_ms", &s->connect);
        fputs(", ", f);
        json_latency(f, "waiting_ms", &s->waiting);
        fputs(", ", f);
        json_latency(f, "processing_ms", &s->processing);
    }
    fprintf(f, ", \"interrupted\": %s, \"aborted\": ", t->interrupted ? "true" : "false");
    if (t->abort_kind >= 0) {
        fprintf(f, "{\"kind\": \"%s\", \"error\": ", gl_fail_name[t->abort_kind]);
        json_string(f, strerror(t->abort_errno));
        fputs("}", f);
    } else {
        fputs("null", f);
    }
    fputs("}\n", f);
}
