/* Green-thread local storage: process-wide keys, per-thread values. A
 * thread's value array is allocated on its first gr_local_set, so threads
 * that never use locals pay one NULL pointer.
 *
 * Each key has a generation, bumped when the key is created; a value is
 * stored with the generation it was set under. A value set under a deleted
 * key is therefore never seen through a new key that reuses the number
 * (pthread_key_create promises NULL for a new key in every thread). */
#include "layout.h"

#include <errno.h>
#include <stdlib.h>

struct gr__local {
    uint32_t gen;
    void *value;
};

static struct {
    atomic_int used;
    atomic_uint gen;
    void (*_Atomic destructor)(void *);
} keys[GR_LOCAL_KEYS_MAX];
static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t keys_fork_once = PTHREAD_ONCE_INIT;

/* Held across fork, so a child never inherits it locked by a thread it
 * does not have. */
static void keys_lock_take(void)
{
    pthread_mutex_lock(&keys_lock);
}

static void keys_lock_give(void)
{
    pthread_mutex_unlock(&keys_lock);
}

static void keys_fork_safe(void)
{
    pthread_atfork(keys_lock_take, keys_lock_give, keys_lock_give);
}

/* pthread's rule: destructors that set values again get a few more rounds. */
#define DESTRUCTOR_ROUNDS 4

int gr_local_key_create(void (*destructor)(void *))
{
    int key = -1;

    pthread_once(&keys_fork_once, keys_fork_safe);
    pthread_mutex_lock(&keys_lock);
    for (int i = 0; i < GR_LOCAL_KEYS_MAX && key < 0; i++) {
        if (!atomic_load(&keys[i].used)) {
            atomic_store(&keys[i].destructor, destructor);
            atomic_fetch_add(&keys[i].gen, 1);
            atomic_store(&keys[i].used, 1);
            key = i;
        }
    }
    pthread_mutex_unlock(&keys_lock);
    if (key < 0)
        errno = EAGAIN;
    return key;
}

static int key_valid(int key)
{
    return key >= 0 && key < GR_LOCAL_KEYS_MAX && atomic_load(&keys[key].used);
}

int gr_local_key_delete(int key)
{
    int rc = 0;

    pthread_mutex_lock(&keys_lock);
    if (key_valid(key)) {
        atomic_store(&keys[key].used, 0);
    } else {
        errno = EINVAL;
        rc = -1;
    }
    pthread_mutex_unlock(&keys_lock);
    return rc;
}

int gr_local_set(int key, void *value)
{
    gr__g *g = gr__running(EPERM);

    if (!g)
        return -1;
    if (!key_valid(key)) {
        errno = EINVAL;
        return -1;
    }
    if (!g->locals && !(g->locals = gr__calloc(GR_LOCAL_KEYS_MAX, sizeof *g->locals))) {
        errno = ENOMEM;
        return -1;
    }
    g->locals[key] = (struct gr__local){atomic_load(&keys[key].gen), value};
    return 0;
}

void *gr_local_get(int key)
{
    gr_hub *h = gr__tls_hub;
    gr__g *g = h ? h->current : NULL;

    if (!g || g == h->hubg || !g->locals || !key_valid(key) ||
        g->locals[key].gen != atomic_load(&keys[key].gen))
        return NULL;
    return g->locals[key].value;
}

void gr__locals_destroy(gr__g *g)
{
    for (int round = 0; g->locals && round < DESTRUCTOR_ROUNDS; round++) {
        int again = 0;

        for (int k = 0; k < GR_LOCAL_KEYS_MAX; k++) {
            struct gr__local l = g->locals[k];
            void (*destructor)(void *) = atomic_load(&keys[k].destructor);

            if (!l.value)
                continue;
            g->locals[k].value = NULL;
            if (key_valid(k) && l.gen == atomic_load(&keys[k].gen) && destructor) {
                destructor(l.value);
                again = 1;
            }
        }
        if (!again)
            break;
    }
    free(g->locals);
    g->locals = NULL;
}
