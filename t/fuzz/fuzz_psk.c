
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * libFuzzer target: the PSK file parser, ngx_stream_dtls_psk_parse()
 * (static; the source file is included, see README.md).  The input is the
 * file's text, in a buffer of exactly its size.
 *
 * Checked when the parser accepts the file (abort() when broken):
 *   - every identity is 1 to 128 printable ASCII bytes, every key 16 to
 *     64 bytes; the index of the keys is sorted (identity's length, then
 *     bytes) and its identities unique, so the handshake's binary search
 *     finds each of them;
 *   - one key per line that is neither blank nor a comment, and each
 *     stored key is that line: identity, the last colon, the key in hex
 *     (the harness's own reading of the line);
 *   - the pool cleanup wipes every key.
 * When it refuses the file: nothing to check but the sanitizers.  The
 * pool is destroyed after each input, so LeakSanitizer sees any leak.
 */


#include "../../src/ngx_stream_dtls_psk.c"

#include "fuzz.h"
#include "fuzz_nginx.h"


static ngx_cycle_t      fuzz_cycle;
static ngx_conf_file_t  fuzz_conf_file;


static ngx_int_t
fuzz_hex(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


/* line "line" (from 1) of the text, without its LF */

static ngx_int_t
fuzz_line(u_char *p, u_char *end, ngx_uint_t line, u_char **start,
    u_char **last)
{
    u_char  *eol;

    for ( ;; ) {
        if (p >= end) {
            return NGX_ERROR;
        }

        eol = memchr(p, '\n', end - p);
        if (eol == NULL) {
            eol = end;
        }

        if (--line == 0) {
            *start = p;
            *last = eol;
            return NGX_OK;
        }

        p = eol + 1;
    }
}


static ngx_uint_t
fuzz_blank(u_char c)
{
    return c == ' ' || c == '\t';
}


/* a key's own line: identity ":" hex key, between blanks and a CR */

static void
fuzz_check_line(ngx_stream_dtls_psk_t *psk, u_char *p, u_char *end)
{
    size_t   i;
    u_char  *q;

    while (p < end && fuzz_blank(*p)) {
        p++;
    }

    while (end > p && (fuzz_blank(end[-1]) || end[-1] == '\r')) {
        end--;
    }

    fuzz_assert(p < end && *p != '#');

    fuzz_assert((size_t) (end - p)
                == psk->identity.len + 1 + 2 * psk->key_len);
    fuzz_assert(ngx_memcmp(p, psk->identity.data, psk->identity.len) == 0);

    q = p + psk->identity.len;
    fuzz_assert(*q == ':');

    /* the last colon: no colon in the key */

    for (q++, i = 0; i < psk->key_len; i++, q += 2) {
        fuzz_assert(fuzz_hex(q[0]) >= 0 && fuzz_hex(q[1]) >= 0);
        fuzz_assert(psk->key[i] == (fuzz_hex(q[0]) << 4 | fuzz_hex(q[1])));
    }
}


static ngx_uint_t
fuzz_count_keys(u_char *p, u_char *end)
{
    u_char      *eol, *s, *e;
    ngx_uint_t   n;

    for (n = 0; p < end; p = eol + 1) {
        eol = memchr(p, '\n', end - p);
        if (eol == NULL) {
            eol = end;
        }

        s = p;
        e = eol;

        while (s < e && fuzz_blank(*s)) {
            s++;
        }

        while (e > s && (fuzz_blank(e[-1]) || e[-1] == '\r')) {
            e--;
        }

        if (s < e && *s != '#') {
            n++;
        }
    }

    return n;
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_nginx_init();

    fuzz_cycle.log = &fuzz_log;
    ngx_str_set(&fuzz_cycle.prefix, "/nonexistent/");
    ngx_str_set(&fuzz_cycle.conf_prefix, "/nonexistent/conf/");
    ngx_cycle = &fuzz_cycle;

    ngx_str_set(&fuzz_conf_file.file.name, "/nonexistent/conf/nginx.conf");
    fuzz_conf_file.file.fd = 0;         /* not NGX_INVALID_FILE */
    fuzz_conf_file.file.log = &fuzz_log;

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                         *rv;
    u_char                       *text, *s, *e;
    ngx_uint_t                    i, j, indexed;
    ngx_conf_t                    cf;
    ngx_pool_t                   *pool;
    ngx_stream_dtls_psk_t        *psk, *found;
    ngx_stream_dtls_psk_store_t  *store;

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, &fuzz_log);
    fuzz_assert(pool != NULL);

    ngx_memzero(&cf, sizeof(ngx_conf_t));
    cf.pool = pool;
    cf.temp_pool = pool;
    cf.cycle = &fuzz_cycle;
    cf.log = &fuzz_log;
    cf.conf_file = &fuzz_conf_file;
    fuzz_conf_file.line = 7;

    /* as ngx_stream_dtls_psk_file() sets it up */

    store = ngx_pcalloc(pool, sizeof(ngx_stream_dtls_psk_store_t));
    fuzz_assert(store != NULL);

    ngx_str_set(&store->file, "/nonexistent/conf/dtls.psk");

    /* exactly the file's bytes, for ASan to guard */

    text = malloc(size ? size : 1);
    fuzz_assert(text != NULL);
    ngx_memcpy(text, data, size);

    rv = ngx_stream_dtls_psk_parse(&cf, store, text, text + size);

    fuzz_assert(ngx_memcmp(text, data, size) == 0);

    if (fuzz_verbose) {
        fprintf(stderr, "psk: %s, %u keys\n",
                rv == NGX_CONF_OK ? "OK" : "ERROR",
                (unsigned) store->nkeys);
    }

    if (rv != NGX_CONF_OK) {
        fuzz_assert(rv == NGX_CONF_ERROR);
        goto done;
    }

    fuzz_assert(store->nkeys > 0);
    fuzz_assert(store->nkeys == fuzz_count_keys(text, text + size));

    psk = store->keys;

    for (i = 1; i < store->nkeys; i++) {
        fuzz_assert(ngx_stream_dtls_psk_cmp(&store->sorted[i - 1]->identity,
                                            &store->sorted[i]->identity)
                    < 0);
    }

    for (i = 0; i < store->nkeys; i++) {

        fuzz_assert(psk[i].identity.len >= 1
                    && psk[i].identity.len
                       <= NGX_STREAM_DTLS_IDENTITY_MAX_LEN);

        for (j = 0; j < psk[i].identity.len; j++) {
            fuzz_assert(psk[i].identity.data[j] >= 0x20
                        && psk[i].identity.data[j] <= 0x7e);
        }

        fuzz_assert(psk[i].key_len >= NGX_STREAM_DTLS_PSK_MIN_LEN
                    && psk[i].key_len <= NGX_STREAM_DTLS_PSK_MAX_LEN);

        /* in the file's order, each indexed once */

        if (i > 0) {
            fuzz_assert(psk[i - 1].line < psk[i].line);
        }

        for (indexed = 0, j = 0; j < store->nkeys; j++) {
            indexed += (store->sorted[j] == &psk[i]);
        }

        fuzz_assert(indexed == 1);

        fuzz_assert(fuzz_line(text, text + size, psk[i].line, &s, &e)
                    == NGX_OK);
        fuzz_check_line(&psk[i], s, e);

        found = ngx_stream_dtls_psk_find(store, psk[i].identity.data,
                                         psk[i].identity.len);
        fuzz_assert(found == &psk[i]);

        /* one byte longer, unprintable: never stored */

        if (psk[i].identity.len < NGX_STREAM_DTLS_IDENTITY_MAX_LEN) {
            u_char  id[NGX_STREAM_DTLS_IDENTITY_MAX_LEN];

            ngx_memcpy(id, psk[i].identity.data, psk[i].identity.len);
            id[psk[i].identity.len] = '\x7f';

            fuzz_assert(ngx_stream_dtls_psk_find(store, id,
                                                 psk[i].identity.len + 1)
                        == NULL);
        }
    }

    ngx_stream_dtls_psk_cleanup(store);

    for (i = 0; i < store->nkeys; i++) {
        for (j = 0; j < sizeof(psk[i].key); j++) {
            fuzz_assert(psk[i].key[j] == 0);
        }
    }

done:

    free(text);
    ngx_destroy_pool(pool);

    return 0;
}
