
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * The pre-shared keys: read from a file at configuration time (so
 * "nginx -s reload" rotates them), checked line by line, indexed by
 * identity for the handshake's lookup, and wiped when the configuration
 * that read them is freed.  No key, nor the file's text, is ever logged,
 * nor copied: the lines are checked and the keys counted first, then the
 * keys decoded once into an array of its final size (a growing array
 * leaves copies behind in the pool), and the sorted index holds pointers
 * (a sort's temporaries would hold keys).
 *
 * "dtls_psk_file cdb:FILE" names a constant database instead
 * (ngx_stream_dtls_psk_db.c); the PSK callback asks whichever store the
 * server has.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


static char *ngx_stream_dtls_psk_parse(ngx_conf_t *cf,
    ngx_stream_dtls_psk_store_t *store, u_char *p, u_char *end);
static char *ngx_stream_dtls_psk_lines(ngx_conf_t *cf,
    ngx_stream_dtls_psk_store_t *store, u_char *p, u_char *end);
static ngx_uint_t ngx_stream_dtls_psk_trim(u_char **p, u_char **end);
static char *ngx_stream_dtls_psk_line(ngx_conf_t *cf,
    ngx_stream_dtls_psk_store_t *store, ngx_stream_dtls_psk_t *psk,
    u_char *p, u_char *end, ngx_uint_t line);
static ngx_int_t ngx_stream_dtls_psk_cmp(ngx_str_t *one, ngx_str_t *two);
static int ngx_libc_cdecl ngx_stream_dtls_psk_sort(const void *one,
    const void *two);
static ngx_stream_dtls_psk_t *ngx_stream_dtls_psk_find(
    ngx_stream_dtls_psk_store_t *store, u_char *identity, size_t len);
static size_t ngx_stream_dtls_psk_key(ngx_stream_dtls_psk_store_t *store,
    ngx_log_t *log, u_char *identity, size_t len, u_char *key, size_t size);
static void ngx_stream_dtls_psk_cleanup(void *data);


char *
ngx_stream_dtls_psk_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_dtls_srv_conf_t *dscf = conf;

    char                         *rv;
    ngx_str_t                    *value, text;
    ngx_pool_cleanup_t           *cln;
    ngx_stream_dtls_psk_store_t  *store;

    if (dscf->psk != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    store = ngx_pcalloc(cf->pool, sizeof(ngx_stream_dtls_psk_store_t));
    if (store == NULL) {
        return NGX_CONF_ERROR;
    }

    store->file = value[1];

    if (store->file.len > 4 && ngx_strncmp(store->file.data, "cdb:", 4) == 0) {
        store->file.data += 4;
        store->file.len -= 4;

        if (ngx_conf_full_name(cf->cycle, &store->file, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        rv = ngx_stream_dtls_psk_db_open(cf, &store->file, &store->db);

        if (rv == NGX_CONF_OK) {
            dscf->psk = store;
        }

        return rv;
    }

    if (ngx_conf_full_name(cf->cycle, &store->file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_stream_dtls_psk_cleanup;
    cln->data = store;

    if (ngx_stream_dtls_read_secret(cf, "PSK file", &store->file, &text)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    rv = ngx_stream_dtls_psk_parse(cf, store, text.data,
                                   text.data + text.len);

    ngx_stream_dtls_free_secret(&text);

    if (rv == NGX_CONF_OK) {
        dscf->psk = store;
    }

    return rv;
}


static char *
ngx_stream_dtls_psk_parse(ngx_conf_t *cf, ngx_stream_dtls_psk_store_t *store,
    u_char *p, u_char *end)
{
    char                    *rv;
    ngx_uint_t               i, n;
    ngx_stream_dtls_psk_t  **sorted;

    /* every line checked and the keys counted, then decoded into place */

    rv = ngx_stream_dtls_psk_lines(cf, store, p, end);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    n = store->nkeys;

    if (n == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "PSK file \"%s\" has no keys", store->file.data);
        return NGX_CONF_ERROR;
    }

    store->sorted = ngx_palloc(cf->pool, n * sizeof(ngx_stream_dtls_psk_t *));
    if (store->sorted == NULL) {
        return NGX_CONF_ERROR;
    }

    store->keys = ngx_pcalloc(cf->pool, n * sizeof(ngx_stream_dtls_psk_t));
    if (store->keys == NULL) {
        return NGX_CONF_ERROR;
    }

    store->nkeys = 0;

    rv = ngx_stream_dtls_psk_lines(cf, store, p, end);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    ngx_qsort(store->sorted, n, sizeof(ngx_stream_dtls_psk_t *),
              ngx_stream_dtls_psk_sort);

    sorted = store->sorted;

    for (i = 1; i < n; i++) {
        if (ngx_stream_dtls_psk_cmp(&sorted[i - 1]->identity,
                                    &sorted[i]->identity)
            == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "PSK file \"%s\", line %ui: duplicate "
                               "identity \"%V\", first at line %ui",
                               store->file.data,
                               ngx_max(sorted[i - 1]->line, sorted[i]->line),
                               &sorted[i]->identity,
                               ngx_min(sorted[i - 1]->line, sorted[i]->line));
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * Every key line: without store->keys, checked and counted in nkeys;
 * with it, decoded into keys[nkeys++] and indexed in sorted[].
 */

static char *
ngx_stream_dtls_psk_lines(ngx_conf_t *cf, ngx_stream_dtls_psk_store_t *store,
    u_char *p, u_char *end)
{
    char                   *rv;
    u_char                 *eol, *start, *last;
    ngx_uint_t              line;
    ngx_stream_dtls_psk_t  *psk;

    psk = NULL;

    for (line = 1; p < end; line++, p = eol + 1) {

        eol = ngx_strlchr(p, end, LF);
        if (eol == NULL) {
            eol = end;
        }

        start = p;
        last = eol;

        if (!ngx_stream_dtls_psk_trim(&start, &last)) {
            continue;
        }

        if (store->keys) {
            psk = &store->keys[store->nkeys];
            store->sorted[store->nkeys] = psk;
        }

        /* counted first: the cleanup wipes it, should the line fail */

        store->nkeys++;

        rv = ngx_stream_dtls_psk_line(cf, store, psk, start, last, line);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    return NGX_CONF_OK;
}


/* a line without its blanks and CR; 0 when blank or a comment */

static ngx_uint_t
ngx_stream_dtls_psk_trim(u_char **p, u_char **end)
{
    u_char  *s, *e;

    s = *p;
    e = *end;

    while (s < e && (*s == ' ' || *s == '\t')) {
        s++;
    }

    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == CR)) {
        e--;
    }

    *p = s;
    *end = e;

    return (s < e && *s != '#');
}


/* a key line, trimmed: checked, and decoded into psk unless NULL */

static char *
ngx_stream_dtls_psk_line(ngx_conf_t *cf, ngx_stream_dtls_psk_store_t *store,
    ngx_stream_dtls_psk_t *psk, u_char *p, u_char *end, ngx_uint_t line)
{
    u_char      *colon, *q;
    size_t       len, i;
    ngx_int_t    hi, lo;
    const char  *reason;

    /* the identity is everything before the last colon */

    colon = NULL;

    for (q = p; q < end; q++) {
        if (*q == ':') {
            colon = q;
        }
    }

    if (colon == NULL) {
        reason = "expected \"identity:hexkey\"";
        goto invalid;
    }

    len = colon - p;

    if (len == 0 || len > NGX_STREAM_DTLS_IDENTITY_MAX_LEN) {
        reason = "identity must be 1 to 128 bytes";
        goto invalid;
    }

    for (q = p; q < colon; q++) {
        if (*q < 0x20 || *q > 0x7e) {
            reason = "identity must be printable ASCII";
            goto invalid;
        }
    }

    len = end - (colon + 1);

    if (len % 2) {
        reason = "key must be an even number of hex digits";
        goto invalid;
    }

    if (len / 2 < NGX_STREAM_DTLS_PSK_MIN_LEN
        || len / 2 > NGX_STREAM_DTLS_PSK_MAX_LEN)
    {
        reason = "key must be 16 to 64 bytes (32 to 128 hex digits)";
        goto invalid;
    }

    for (i = 0, q = colon + 1; q < end; i++, q += 2) {
        hi = ngx_hextoi(q, 1);
        lo = ngx_hextoi(q + 1, 1);

        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            reason = "key is not hexadecimal";
            goto invalid;
        }

        if (psk) {
            psk->key[i] = (u_char) (hi << 4 | lo);
        }
    }

    if (psk == NULL) {
        return NGX_CONF_OK;
    }

    psk->line = line;
    psk->key_len = len / 2;

    psk->identity.len = colon - p;
    psk->identity.data = ngx_pnalloc(cf->pool, psk->identity.len);
    if (psk->identity.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(psk->identity.data, p, psk->identity.len);

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "PSK file \"%s\", line %ui: %s",
                       store->file.data, line, reason);

    return NGX_CONF_ERROR;
}


/* identities in order of length, then of bytes */

static ngx_int_t
ngx_stream_dtls_psk_cmp(ngx_str_t *one, ngx_str_t *two)
{
    if (one->len != two->len) {
        return (one->len < two->len) ? -1 : 1;
    }

    return ngx_memcmp(one->data, two->data, one->len);
}


static int ngx_libc_cdecl
ngx_stream_dtls_psk_sort(const void *one, const void *two)
{
    ngx_stream_dtls_psk_t  *a = *(ngx_stream_dtls_psk_t **) one;
    ngx_stream_dtls_psk_t  *b = *(ngx_stream_dtls_psk_t **) two;

    return (int) ngx_stream_dtls_psk_cmp(&a->identity, &b->identity);
}


static ngx_stream_dtls_psk_t *
ngx_stream_dtls_psk_find(ngx_stream_dtls_psk_store_t *store, u_char *identity,
    size_t len)
{
    ngx_int_t    rc;
    ngx_str_t    id;
    ngx_uint_t   lo, hi, mid;

    id.len = len;
    id.data = identity;

    lo = 0;
    hi = store->nkeys;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        rc = ngx_stream_dtls_psk_cmp(&id, &store->sorted[mid]->identity);

        if (rc == 0) {
            return store->sorted[mid];
        }

        if (rc < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    return NULL;
}


static size_t
ngx_stream_dtls_psk_key(ngx_stream_dtls_psk_store_t *store, ngx_log_t *log,
    u_char *identity, size_t len, u_char *key, size_t size)
{
    ngx_stream_dtls_psk_t  *psk;

    if (store->db) {
        return ngx_stream_dtls_psk_db_key(store->db, log, identity, len, key,
                                          size);
    }

    psk = ngx_stream_dtls_psk_find(store, identity, len);

    if (psk == NULL || psk->key_len > size) {
        return 0;
    }

    ngx_memcpy(key, psk->key, psk->key_len);

    return psk->key_len;
}


/* an identity the store still has (a session continued from the zone) */

ngx_uint_t
ngx_stream_dtls_psk_known(ngx_stream_dtls_psk_store_t *store, ngx_log_t *log,
    ngx_str_t *identity)
{
    size_t  n;
    u_char  key[NGX_STREAM_DTLS_PSK_MAX_LEN];

    n = ngx_stream_dtls_psk_key(store, log, identity->data, identity->len,
                                key, sizeof(key));

    OPENSSL_cleanse(key, sizeof(key));

    return n != 0;
}


unsigned int
ngx_stream_dtls_psk_server_cb(SSL *ssl, const char *identity,
    unsigned char *key, unsigned int max_key_len)
{
    u_char                      *last;
    size_t                       len, n;
    ngx_connection_t            *c;
    ngx_stream_dtls_conn_t      *ctx;
    ngx_stream_dtls_srv_conf_t  *dscf;
    u_char                       text[NGX_STREAM_DTLS_IDENTITY_MAX_LEN];

    c = SSL_get_ex_data(ssl, ngx_ssl_connection_index);
    dscf = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ngx_ssl_server_conf_index);

    len = identity ? ngx_strlen(identity) : 0;

    if (len && len <= NGX_STREAM_DTLS_IDENTITY_MAX_LEN && dscf->psk) {
        n = ngx_stream_dtls_psk_key(dscf->psk, c->log, (u_char *) identity,
                                    len, key, max_key_len);
        if (n) {
            return n;
        }
    }

    /* the identity comes from the client: log it printable and bounded */

    last = ngx_stream_dtls_psk_printable(text, (u_char *) identity, len);

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "DTLS client sent unknown PSK identity \"%*s\"%s",
                  last - text, text,
                  len > NGX_STREAM_DTLS_IDENTITY_MAX_LEN ? "..." : "");

    ctx = ngx_stream_dtls_ssl_conn(ssl);

    ctx->failure = "unknown PSK identity";

    return 0;
}


/*
 * At most NGX_STREAM_DTLS_IDENTITY_MAX_LEN bytes of an identity, with
 * what is not printable, and quotes, as "?"; the end of what was written
 */

u_char *
ngx_stream_dtls_psk_printable(u_char *dst, u_char *src, size_t len)
{
    u_char  *p, *last;

    len = ngx_min(len, NGX_STREAM_DTLS_IDENTITY_MAX_LEN);
    last = ngx_cpymem(dst, src, len);

    for (p = dst; p < last; p++) {
        if (*p < 0x20 || *p > 0x7e || *p == '"') {
            *p = '?';
        }
    }

    return last;
}


static void
ngx_stream_dtls_psk_cleanup(void *data)
{
    ngx_stream_dtls_psk_store_t *store = data;

    /* keys[0 .. nkeys) are the only slots ever written */

    if (store->keys) {
        OPENSSL_cleanse(store->keys,
                        store->nkeys * sizeof(ngx_stream_dtls_psk_t));
    }
}
