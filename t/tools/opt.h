
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * The whole numbers given to options, each within its bounds, or a line
 * that says what the option takes.  Included by the tools that take
 * numbers (dtls_client, dtls_floor), beside addr.h and dtls.h:
 *
 *     static opt_number_t  numbers[] = { { 'n', 0, 100, &cf.n }, { 0 } };
 *
 *     rc = opt_numbers("tool", numbers, opt, optarg);
 *
 * 1: not a number option; 0: its number taken; -1: not a number in its
 * bounds (said on stderr).
 */


#ifndef _NGX_DTLS_TOOLS_OPT_H_INCLUDED_
#define _NGX_DTLS_TOOLS_OPT_H_INCLUDED_


#include <errno.h>
#include <stdio.h>
#include <stdlib.h>


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


#endif /* _NGX_DTLS_TOOLS_OPT_H_INCLUDED_ */
