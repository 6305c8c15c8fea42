/* Writes what is made from the one table of interposed calls (table.h):
 *   --map   the version script of libgrove-patch.so (grove's gr_ API and
 *           every table entry exported, nothing else)
 *   --doc   the table of docs/patching.md, between its markers
 *   --names the interposed names, one a line
 * A build tool: it runs on the build machine, so it reads the table as
 * text only and needs none of the types the table names. */
#include <stdio.h>
#include <string.h>

static const struct entry {
    const char *family, *handling, *name, *note;
} entries[] = {
#define GR_PATCH(fam, how, ret, name, params, note) {#fam, #how, #name, note},
#include "table.h"
#undef GR_PATCH
};

#define N (sizeof entries / sizeof entries[0])

static const struct {
    const char *how, *doc;
} handlings[] = {
    {"WAIT", "waits"},       {"LOOK", "looks again"}, {"SLEEP", "sleeps"},
    {"POOL", "thread pool"}, {"BOOK", "bookkeeping"}, {"CHK", "fortify"},
    {"PASS", "real call"},   {"OWN", "replaced"},
};

static const char *handling_doc(const char *how)
{
    for (size_t i = 0; i < sizeof handlings / sizeof handlings[0]; i++)
        if (!strcmp(handlings[i].how, how))
            return handlings[i].doc;
    return how;
}

static void lower(const char *s, char *out, size_t len)
{
    size_t i;

    for (i = 0; s[i] && i + 1 < len; i++)
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
    out[i] = 0;
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";

    if (!strcmp(what, "--map")) {
        printf("/* Generated from src/patch/table.h by table_gen: do not edit. */\n{\n"
               "  global:\n    gr_*;\n");
        for (size_t i = 0; i < N; i++)
            printf("    %s;\n", entries[i].name);
        printf("  local:\n    *;\n};\n");
    } else if (!strcmp(what, "--doc")) {
        printf("| call | family | handling | notes |\n|---|---|---|---|\n");
        for (size_t i = 0; i < N; i++) {
            char fam[16];

            lower(entries[i].family, fam, sizeof fam);
            if (!strcmp(entries[i].handling, "CHK"))
                printf("| `%s` | %s | fortify | checks the size, then as `%s` |\n", entries[i].name,
                       fam, entries[i].note);
            else
                printf("| `%s` | %s | %s | %s |\n", entries[i].name, fam,
                       handling_doc(entries[i].handling), entries[i].note);
        }
    } else if (!strcmp(what, "--names")) {
        for (size_t i = 0; i < N; i++)
            printf("%s\n", entries[i].name);
    } else {
        fprintf(stderr, "usage: %s --map | --doc | --names\n", argv[0]);
        return 2;
    }
    return 0;
}
