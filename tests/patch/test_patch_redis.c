/* libgrove-patch with hiredis' synchronous API, as Debian ships it,
 * against a real redis-server (started by servers.sh; one more is started
 * here to be killed). One OS thread, many green threads, each making
 * blocking redisCommand calls; the heartbeat fails any stall of the hub. */
#include "patch_common.h"

#include <hiredis/hiredis.h>

static int redis_port(void)
{
    return atoi(peer_env("GROVE_TEST_REDIS_PORT", "redis-server"));
}

static redisContext *connect_redis(int port)
{
    redisContext *c = redisConnect("127.0.0.1", port);

    cr_assert(c && !c->err, "redisConnect: %s", c ? c->errstr : "no memory");
    return c;
}

typedef struct blpop {
    int port, i;
    int ok;
} blpop;

static void *one_blpop(void *arg)
{
    blpop *b = arg;
    redisContext *c = connect_redis(b->port);
    redisReply *r = redisCommand(c, "BLPOP grove:patch:%d:%d 2", (int)getpid(), b->i);

    b->ok = r && r->type == REDIS_REPLY_NIL;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return NULL;
}

#define NBLPOP 100

static void *many_blpops(void *arg)
{
    static blpop b[NBLPOP];
    gr_t g[NBLPOP];
    heartbeat hb;
    int64_t t0 = now_ms(), took;

    (void)arg;
    hb_start(&hb);
    for (int i = 0; i < NBLPOP; i++) {
        b[i] = (blpop){redis_port(), i, 0};
        g[i] = gr_spawn(one_blpop, &b[i]);
    }
    for (int i = 0; i < NBLPOP; i++) {
        gr_join(g[i], NULL, -1);
        cr_assert(b[i].ok, "BLPOP %d did not time out as redis says", i);
    }
    took = now_ms() - t0;
    hb_check(&hb);
    cr_assert_geq(took, 1900);
    cr_assert_lt(took, TIME_TARGET(3000), "100 BLPOP of 2 s took %lld ms", (long long)took);
    return NULL;
}

Test(patch_redis, a_hundred_green_threads_blpop_2_seconds_at_once, .timeout = 30)
{
    require_patch();
    redis_port();
    run_main(many_blpops, NULL);
}

static void *timeout_honoured(void *arg)
{
    redisContext *c = connect_redis(redis_port()), *other = connect_redis(redis_port());
    struct timeval tv = {0, 200000};
    heartbeat hb;
    redisReply *r;
    int64_t t0;

    (void)arg;
    hb_start(&hb);
    cr_assert_eq(redisSetTimeout(c, tv), REDIS_OK);
    t0 = now_ms();
    r = redisCommand(c, "BLPOP grove:patch:never:%d 5", (int)getpid());
    cr_assert_null(r, "BLPOP outlived the context's time-out");
    cr_assert_eq(c->err, REDIS_ERR_IO);
    cr_assert_geq(now_ms() - t0, 190);
    cr_assert_lt(now_ms() - t0, 1000);
    /* The other context is untouched. */
    r = redisCommand(other, "PING");
    cr_assert(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    hb_check(&hb);
    redisFree(c);
    redisFree(other);
    return NULL;
}

Test(patch_redis, redis_set_timeout_is_honoured, .timeout = 30)
{
    require_patch();
    redis_port();
    run_main(timeout_honoured, NULL);
}

#define BIGVAL ((size_t)64 << 20)

static void *big_set(void *arg)
{
    redisContext *c = connect_redis(redis_port());
    char *val = malloc(BIGVAL), key[64];
    heartbeat hb;
    redisReply *r;

    (void)arg;
    cr_assert_not_null(val);
    fill_pattern((unsigned char *)val, BIGVAL, 3);
    snprintf(key, sizeof key, "grove:patch:big:%d", (int)getpid());
    /* redisCommand, in its two halves: hiredis formats the 64 MB command
     * (a copy: computing, not waiting), then sends it and reads the
     * reply, which is what must not stall the hub. */
    cr_assert_eq(redisAppendCommand(c, "SET %s %b", key, val, BIGVAL), REDIS_OK);
    hb_start(&hb);
    /* hiredis frees its 64 MB buffer when the write is done (an munmap of
     * 64 MB, tens of ms of kernel work on a loaded machine): computation
     * of the caller's, not a wait, so only waits are counted here. */
    hb.blocking_only = 1;
    cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK, "SET: %s", c->errstr);
    cr_assert(r && r->type == REDIS_REPLY_STATUS, "SET: %s", r ? r->str : c->errstr);
    freeReplyObject(r);
    r = redisCommand(c, "STRLEN %s", key);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == (long long)BIGVAL);
    freeReplyObject(r);
    r = redisCommand(c, "GETRANGE %s %lld %lld", key, (long long)BIGVAL - 16,
                     (long long)BIGVAL - 1);
    cr_assert(r && r->type == REDIS_REPLY_STRING && r->len == 16);
    cr_assert_eq(memcmp(r->str, val + BIGVAL - 16, 16), 0);
    freeReplyObject(r);
    freeReplyObject(redisCommand(c, "DEL %s", key));
    hb_check(&hb);
    free(val);
    redisFree(c);
    return NULL;
}

Test(patch_redis, a_64_mb_set, .timeout = 60)
{
    require_patch();
    redis_port();
    run_main(big_set, NULL);
}

/* -------------------------------------------- a server killed mid-command */

static pid_t start_redis(int *port)
{
    const char *bin = peer_env("GROVE_TEST_REDIS_SERVER", "redis-server");
    int l = posix_listen(port);
    char portarg[16];
    pid_t pid;

    close(l); /* a free port, given to the server */
    snprintf(portarg, sizeof portarg, "%d", *port);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(null, 1);
        dup2(null, 2);
        execl(bin, bin, "--port", portarg, "--bind", "127.0.0.1", "--save", "", "--appendonly",
              "no", "--dir", "/tmp", (char *)NULL);
        _exit(127);
    }
    return pid;
}

typedef struct victim {
    int port;
    int err;
    int64_t took;
} victim;

static void *blpop_on_doomed(void *arg)
{
    victim *v = arg;
    redisContext *c = NULL;
    redisReply *r;
    int64_t t0;

    for (int i = 0; i < 1000 && !c; i++) { /* until the new server listens */
        c = redisConnect("127.0.0.1", v->port);
        if (c && c->err) {
            redisFree(c);
            c = NULL;
            gr_sleep(gr_now_update() + 10);
        }
    }
    cr_assert_not_null(c, "the second redis-server did not start");
    t0 = now_ms();
    r = redisCommand(c, "BLPOP doomed 10");
    v->took = now_ms() - t0;
    cr_assert_null(r, "a reply from a killed server");
    v->err = c->err;
    redisFree(c);
    return NULL;
}

static void *killed_server(void *arg)
{
    victim v = {0, 0, 0};
    blpop other = {redis_port(), 999, 0};
    pid_t pid = start_redis(&v.port);
    heartbeat hb;
    gr_t a, b;

    (void)arg;
    hb_start(&hb);
    a = gr_spawn(blpop_on_doomed, &v);
    b = gr_spawn(one_blpop, &other);
    gr_sleep(gr_now_update() + 500);
    kill(pid, SIGKILL);
    gr_join(a, NULL, -1);
    cr_assert(v.err == REDIS_ERR_EOF || v.err == REDIS_ERR_IO, "error %d", v.err);
    cr_assert_lt(v.took, 2000);
    gr_join(b, NULL, -1);
    cr_assert(other.ok, "the context on the live server was affected");
    hb_check(&hb);
    waitpid(pid, NULL, 0);
    return NULL;
}

Test(patch_redis, a_server_killed_mid_command_affects_only_its_context, .timeout = 30)
{
    require_patch();
    redis_port();
    run_main(killed_server, NULL);
}

/* --------------------------------------------------- a killed green thread */

static void *blpop_victim(void *arg)
{
    victim *v = arg;
    redisContext *c = connect_redis(v->port);
    redisReply *r;
    int64_t t0 = now_ms();

    r = redisCommand(c, "BLPOP grove:patch:victim:%d 10", (int)getpid());
    v->took = now_ms() - t0;
    v->err = r ? 0 : errno;
    cr_assert_null(r);
    cr_assert_eq(c->err, REDIS_ERR_IO);
    redisFree(c);
    return NULL;
}

static void *killed_caller(void *arg)
{
    victim v = {redis_port(), 0, 0};
    gr_t g = gr_spawn(blpop_victim, &v);

    (void)arg;
    gr_sleep(gr_now_update() + 100);
    gr_kill(g);
    gr_join(g, NULL, -1);
    cr_assert_eq(v.err, ECANCELED, "hiredis saw errno %d", v.err);
    cr_assert_lt(v.took, 1000, "hiredis retried after the kill");
    return NULL;
}

Test(patch_redis, a_killed_green_thread_makes_hiredis_give_up, .timeout = 30)
{
    require_patch();
    redis_port();
    run_main(killed_caller, NULL);
}
