/* libgrove-patch with libpq, as Debian ships it, against a real
 * PostgreSQL (a temporary cluster started by servers.sh): fifty green
 * threads on one OS thread each connect and run SELECT pg_sleep(1), over
 * TCP and over the Unix socket; PQcancel from another green thread; a
 * killed green thread. The heartbeat fails any stall of the hub. */
#include "patch_common.h"

#include <libpq-fe.h>

static void conninfo(char *buf, size_t len, int unix_socket)
{
    const char *port = peer_env("GROVE_TEST_PG_PORT", "PostgreSQL");

    if (unix_socket)
        snprintf(buf, len,
                 "host=%s port=%s user=postgres dbname=postgres sslmode=disable "
                 "gssencmode=disable connect_timeout=10",
                 peer_env("GROVE_TEST_PG_SOCKDIR", "PostgreSQL"), port);
    else
        snprintf(buf, len,
                 "host=127.0.0.1 port=%s user=postgres dbname=postgres sslmode=disable "
                 "gssencmode=disable connect_timeout=10",
                 port);
}

static PGconn *pg_connect(int unix_socket)
{
    char info[512];
    PGconn *c;

    conninfo(info, sizeof info, unix_socket);
    c = PQconnectdb(info);
    cr_assert(PQstatus(c) == CONNECTION_OK, "PQconnectdb: %s", PQerrorMessage(c));
    return c;
}

typedef struct sleeper {
    int unix_socket;
    int ok;
} sleeper;

/* All connect at once, then all query at once: the 1.5 s is the queries'. */
static gr_event go;
static int connected;

static void *one_sleep(void *arg)
{
    sleeper *s = arg;
    PGconn *c = pg_connect(s->unix_socket);
    PGresult *r;

    connected++;
    gr_event_wait(&go, -1);
    r = PQexec(c, "SELECT pg_sleep(1)");
    s->ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!s->ok)
        fprintf(stderr, "pg_sleep: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return NULL;
}

#define NCONN 50

static void fifty_sleeps(int unix_socket)
{
    static sleeper s[NCONN];
    gr_t g[NCONN];
    heartbeat hb;
    int64_t t0 = now_ms(), took;

    hb_start(&hb);
    gr_event_init(&go);
    connected = 0;
    for (int i = 0; i < NCONN; i++) {
        s[i] = (sleeper){unix_socket, 0};
        g[i] = gr_spawn(one_sleep, &s[i]);
    }
    while (connected < NCONN)
        gr_sleep(gr_now_update() + 1);
    cr_log_info("50 connections made at once in %lld ms", (long long)(now_ms() - t0));
    t0 = now_ms();
    gr_event_set(&go);
    for (int i = 0; i < NCONN; i++) {
        gr_join(g[i], NULL, -1);
        cr_assert(s[i].ok, "connection %d failed", i);
    }
    took = now_ms() - t0;
    hb_check(&hb);
    cr_assert_geq(took, 1000);
    cr_assert_lt(took, TIME_TARGET(1500), "50 x pg_sleep(1) took %lld ms", (long long)took);
}

static void *over_tcp(void *arg)
{
    (void)arg;
    fifty_sleeps(0);
    return NULL;
}

static void *over_unix(void *arg)
{
    (void)arg;
    fifty_sleeps(1);
    return NULL;
}

Test(patch_pq, fifty_connections_sleep_a_second_at_once_over_tcp, .timeout = 30)
{
    require_patch();
    peer_env("GROVE_TEST_PG_PORT", "PostgreSQL");
    run_main(over_tcp, NULL);
}

Test(patch_pq, fifty_connections_sleep_a_second_at_once_over_the_unix_socket, .timeout = 30)
{
    require_patch();
    peer_env("GROVE_TEST_PG_PORT", "PostgreSQL");
    run_main(over_unix, NULL);
}

/* ------------------------------------------------------------- PQcancel */

typedef struct longq {
    PGconn *c;
    int status;
    char sqlstate[8];
    int64_t took;
} longq;

static void *long_query(void *arg)
{
    longq *q = arg;
    int64_t t0 = now_ms();
    PGresult *r = PQexec(q->c, "SELECT pg_sleep(10)");
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);

    q->took = now_ms() - t0;
    q->status = PQresultStatus(r);
    snprintf(q->sqlstate, sizeof q->sqlstate, "%s", st ? st : "");
    PQclear(r);
    return NULL;
}

static void *cancel(void *arg)
{
    longq q = {pg_connect(0), 0, "", 0};
    heartbeat hb;
    PGcancel *pc;
    char err[256];
    gr_t g;

    (void)arg;
    hb_start(&hb);
    g = gr_spawn(long_query, &q);
    gr_sleep(gr_now_update() + 200);
    pc = PQgetCancel(q.c);
    cr_assert_not_null(pc);
    cr_assert_eq(PQcancel(pc, err, sizeof err), 1, "PQcancel: %s", err);
    PQfreeCancel(pc);
    gr_join(g, NULL, -1);
    cr_assert_eq(q.status, PGRES_FATAL_ERROR);
    cr_assert_str_eq(q.sqlstate, "57014", "not cancelled: %s", q.sqlstate); /* query_canceled */
    cr_assert_lt(q.took, 2000);
    hb_check(&hb);
    PQfinish(q.c);
    return NULL;
}

Test(patch_pq, pqcancel_from_another_green_thread, .timeout = 30)
{
    require_patch();
    peer_env("GROVE_TEST_PG_PORT", "PostgreSQL");
    run_main(cancel, NULL);
}

static void *killed(void *arg)
{
    longq q = {pg_connect(0), 0, "", 0};
    gr_t g = gr_spawn(long_query, &q);

    (void)arg;
    gr_sleep(gr_now_update() + 200);
    gr_kill(g);
    gr_join(g, NULL, -1);
    cr_assert_eq(q.status, PGRES_FATAL_ERROR, "libpq did not give up");
    cr_assert_lt(q.took, 1000);
    PQfinish(q.c);
    return NULL;
}

Test(patch_pq, a_killed_green_thread_makes_libpq_give_up, .timeout = 30)
{
    require_patch();
    peer_env("GROVE_TEST_PG_PORT", "PostgreSQL");
    run_main(killed, NULL);
}
