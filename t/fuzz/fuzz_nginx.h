
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * What the targets that run nginx code share (fuzz_hello, fuzz_psk):
 * nginx's globals as at its start, and a log that formats everything, as
 * with "error_log ... debug", and prints it only with FUZZ_VERBOSE=1 (the
 * outcome and the log on stderr, to read seeds).  Beside fuzz.h, after
 * the module's source.
 */


#ifndef _NGX_STREAM_DTLS_FUZZ_NGINX_H_INCLUDED_
#define _NGX_STREAM_DTLS_FUZZ_NGINX_H_INCLUDED_


static ngx_log_t   fuzz_log;
static ngx_uint_t  fuzz_verbose;


static void
fuzz_log_writer(ngx_log_t *log, ngx_uint_t level, u_char *buf, size_t len)
{
    /* formatted, then dropped */

    if (fuzz_verbose) {
        fprintf(stderr, "  log: %.*s", (int) len, buf);
    }
}


static void
fuzz_nginx_init(void)
{
    ngx_pagesize = getpagesize();
    ngx_cacheline_size = NGX_CPU_CACHE_LINE;
    for (ngx_pagesize_shift = 0; ngx_pagesize >> (ngx_pagesize_shift + 1);
         ngx_pagesize_shift++) { /* void */ }

    ngx_use_stderr = 0;
    ngx_time_init();

    fuzz_verbose = getenv("FUZZ_VERBOSE") != NULL;

    fuzz_log.log_level = NGX_LOG_DEBUG_ALL | NGX_LOG_DEBUG;
    fuzz_log.writer = fuzz_log_writer;
}


#endif /* _NGX_STREAM_DTLS_FUZZ_NGINX_H_INCLUDED_ */
