
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * A whole number given to an option, within its bounds, or a line that
 * says what the option takes.  Included by the tools that take numbers
 * (dtls_client, dtls_floor), beside addr.h and dtls.h.
 */


#ifndef _NGX_DTLS_TOOLS_OPT_H_INCLUDED_
#define _NGX_DTLS_TOOLS_OPT_H_INCLUDED_


#include <errno.h>
#include <stdio.h>
#include <stdlib.h>


static int
opt_number(const char *tool, int opt, const char *arg, long min, long max,
    long *n)
{
    long   v;
    char  *end;

    errno = 0;
    v = strtol(arg, &end, 10);

    if (*arg == '\0' || *end != '\0' || errno || v < min || v > max) {
        fprintf(stderr, "%s: -%c must be %ld to %ld\n", tool, opt, min, max);
        return -1;
    }

    *n = v;

    return 0;
}


#endif /* _NGX_DTLS_TOOLS_OPT_H_INCLUDED_ */
