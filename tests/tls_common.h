/* The TLS tests' shared pieces: ECDSA P-256 certificates made for each
 * test process with the openssl command into a temporary directory, a TLS
 * server on loopback built on gr_server, and shell commands (openssl
 * s_client, curl) run on the thread pool while the hub keeps serving. */
#ifndef GROVE_TEST_TLS_COMMON_H
#define GROVE_TEST_TLS_COMMON_H

#include "shell_common.h"

#include <grove/tls.h>

#include <stdlib.h>
#include <unistd.h>

#define WAIT_MS 5000

/* ------------------------------------------------------- certificates */

static char cert_dir[64];

/* path of file in the certificate directory (a static buffer of 4). */
static inline const char *cpath(const char *file)
{
    static char bufs[4][128];
    static int next;
    char *b = bufs[next++ % 4];

    snprintf(b, sizeof bufs[0], "%s/%s", cert_dir, file);
    return b;
}

/* A self-signed P-256 certificate name.pem / name.key for DNS name, with
 * 127.0.0.1 too. */
static inline void make_cert(const char *name)
{
    char cmd[1024];

    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-keyout %s/%s.key -out %s/%s.pem -subj /CN=%s "
             "-addext subjectAltName=DNS:%s,IP:127.0.0.1 >/dev/null 2>&1",
             cert_dir, name, cert_dir, name, name, name);
    cr_assert_eq(system(cmd), 0, "openssl req failed: %s", cmd);
}

static inline void need_openssl(void)
{
    if (access("/usr/bin/openssl", X_OK) != 0)
        cr_skip_test("openssl is not installed (scripts/deps.sh test installs it)");
}

/* Before each test: a.test and b.test certificates. */
static inline void certs_init(void)
{
    need_openssl();
    snprintf(cert_dir, sizeof cert_dir, "/tmp/grove-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(cert_dir));
    make_cert("a.test");
    make_cert("b.test");
}

static inline void certs_fini(void)
{
    char cmd[128];

    if (cert_dir[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", cert_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", cert_dir);
    }
}

/* A server context with name's certificate. */
static inline gr_tls_ctx *server_ctx(const char *name)
{
    gr_tls_ctx *ctx = gr_tls_ctx_new(GR_TLS_SERVER);
    char pem[64], key[64];

    cr_assert_not_null(ctx);
    snprintf(pem, sizeof pem, "%s.pem", name);
    snprintf(key, sizeof key, "%s.key", name);
    cr_assert_eq(gr_tls_ctx_add_cert_file(ctx, cpath(pem), cpath(key)), 0, "%s",
                 gr_tls_ctx_error(ctx));
    return ctx;
}

/* A client context trusting name's certificate only. */
static inline gr_tls_ctx *client_ctx(const char *name)
{
    gr_tls_ctx *ctx = gr_tls_ctx_new(GR_TLS_CLIENT);
    char pem[64];

    cr_assert_not_null(ctx);
    snprintf(pem, sizeof pem, "%s.pem", name);
    cr_assert_eq(gr_tls_ctx_load_ca(ctx, cpath(pem), NULL), 0, "%s", gr_tls_ctx_error(ctx));
    return ctx;
}

#endif
