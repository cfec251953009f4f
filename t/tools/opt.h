
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * getopt() with the options that need no code of the tool's taken: whole
 * numbers, each within its bounds (or a line that says what the option
 * takes), strings as given, flags.  Included by dtls_client, dtls_load and
 * dtls_floor, beside addr.h and dtls.h:
 *
 *     static opt_number_t  numbers[] = { { 'n', 0, 100, &cf.n }, { 0 } };
 *     static opt_arg_t     args[] = { { 'i', &cf.id, NULL },
 *                                     { 'v', NULL, &cf.verbose }, { 0 } };
 *
 *     while ((opt = opt_next("tool", argc, argv, "n:i:v", numbers, args))
 *            != -1)
 *
 * The next option that is neither, '?' on an error (said on stderr), -1
 * at the end.  And a word of a list (-m MODE), by its index.
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


typedef struct {
    int                      opt;
    const char             **s;         /* the argument, as given */
    int                     *flag;      /* or set to 1 */
} opt_arg_t;


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
    opt_number_t *numbers, opt_arg_t *args)
{
    int         opt, rc;
    opt_arg_t  *a;

    while ((opt = getopt(argc, argv, optstring)) != -1) {
        rc = opt_numbers(tool, numbers, opt, optarg);

        if (rc == -1) {
            return '?';
        }

        if (rc == 0) {
            continue;
        }

        for (a = args; a->opt && a->opt != opt; a++) { /* void */ }

        if (a->opt == 0) {
            return opt;
        }

        if (a->s) {
            *a->s = optarg;

        } else {
            *a->flag = 1;
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
