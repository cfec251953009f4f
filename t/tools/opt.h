
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * getopt() with the whole numbers given to options taken, each within its
 * bounds, or a line that says what the option takes.  Included by the
 * tools that take numbers (dtls_client, dtls_load, dtls_floor), beside
 * addr.h and dtls.h:
 *
 *     static opt_number_t  numbers[] = { { 'n', 0, 100, &cf.n }, { 0 } };
 *
 *     while ((opt = opt_next("tool", argc, argv, "n:v", numbers)) != -1) {
 *
 * The next option that is not a number option, '?' on an error (said on
 * stderr), -1 at the end.  And a word of a list (-m MODE), by its index.
 */


#ifndef _NGX_DTLS_TOOLS_OPT_H_INCLUDED_
#define _NGX_DTLS_TOOLS_OPT_H_INCLUDED_


#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


typedef struct {
    int                      opt;
    long                     min;
    long                     max;
    long                    *n;
} opt_number_t;


static int
opt_numbers(const char *tool, opt_number_t *o, int opt, const char *arg)
{
    long   v;
    char  *end;

    while (o->opt && o->opt != opt) {
        o++;
    }

    if (o->opt == 0) {
        return 1;
    }

    errno = 0;
    v = strtol(arg, &end, 10);

    if (*arg == '\0' || *end != '\0' || errno || v < o->min || v > o->max) {
        fprintf(stderr, "%s: -%c must be %ld to %ld\n", tool, opt, o->min,
                o->max);
        return -1;
    }

    *o->n = v;

    return 0;
}


static int
opt_next(const char *tool, int argc, char **argv, const char *optstring,
    opt_number_t *numbers)
{
    int  opt, rc;

    while ((opt = getopt(argc, argv, optstring)) != -1) {
        rc = opt_numbers(tool, numbers, opt, optarg);

        if (rc == 1) {
            return opt;
        }

        if (rc == -1) {
            return '?';
        }
    }

    return -1;
}


/* the index of arg in names (NULL-terminated), or -1, said on stderr */

static int
opt_word(const char *tool, int opt, const char *const *names, const char *arg)
{
    int  i;

    for (i = 0; names[i]; i++) {
        if (strcmp(names[i], arg) == 0) {
            return i;
        }
    }

    fprintf(stderr, "%s: unknown -%c \"%s\"\n", tool, opt, arg);

    return -1;
}


#endif /* _NGX_DTLS_TOOLS_OPT_H_INCLUDED_ */
