/* Child processes and signals in green threads: three commands run at
 * once, each in its own green thread, their output collected with
 * gr_proc_communicate; a SIGUSR1 handler runs as a green thread of its own;
 * a slow command is given a deadline and killed. See docs/process.md. */
/* example-expect: [1] exit 0: one */
/* example-expect: [2] exit 0: two */
/* example-expect: [3] exit 0: three */
/* example-expect: signal 10 handled in a green thread */
/* example-expect: sleep: timed out, killed by signal 15 */
#define _GNU_SOURCE
#include <grove.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

static const char *scripts[] = {"sleep 0.3; echo one", "sleep 0.2; echo two", "echo three"};

/* Run one shell command and print what it wrote, and its exit status. */
static void *run_one(void *arg)
{
    int i = (int)(intptr_t)arg, status;
    const char *argv[] = {"sh", "-c", scripts[i], NULL};
    gr_proc_opts opts = {.stdio = {{GR_STDIO_NULL, 0}, {GR_STDIO_PIPE, 0}}};
    gr_proc *p = gr_proc_spawn(argv, &opts);
    char *out;
    size_t len;

    if (!p) {
        perror("gr_proc_spawn");
        return NULL;
    }
    if (gr_proc_communicate(p, NULL, 0, &out, &len, NULL, NULL, &status, gr_now() + 5000) == 0) {
        /* Printed when each finishes: three first, one last. */
        printf("[%d] exit %d: %s", i + 1, WEXITSTATUS(status), out);
        free(out);
    }
    gr_proc_free(p);
    return NULL;
}

static void on_usr1(const gr_siginfo *info, void *arg)
{
    printf("signal %d handled in a green thread\n", info->signo);
    gr_event_set(arg);
}

static void *run(void *arg)
{
    const char *slow[] = {"sleep", "10", NULL};
    gr_t t[3];
    gr_event handled;
    gr_signals *h;
    gr_proc *p;
    int status;

    (void)arg;
    for (int i = 0; i < 3; i++)
        t[i] = gr_spawn(run_one, (void *)(intptr_t)i);
    for (int i = 0; i < 3; i++)
        gr_join(t[i], NULL, -1);

    gr_event_init(&handled);
    h = gr_signal_handler(GR_SIG(SIGUSR1), on_usr1, &handled);
    raise(SIGUSR1);
    gr_event_wait(&handled, gr_now() + 5000);
    gr_signal_close(h);

    p = gr_proc_spawn(slow, NULL);
    if (gr_proc_wait(p, &status, gr_now_update() + 100) != 0) {
        gr_proc_kill(p, SIGTERM);
        gr_proc_wait(p, &status, -1);
        printf("sleep: timed out, killed by signal %d\n", WTERMSIG(status));
    }
    gr_proc_free(p);
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    return gr_main(run, NULL, NULL) == 0 ? 0 : 1;
}
