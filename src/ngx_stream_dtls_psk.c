
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * The pre-shared keys: read from a file at configuration time (so
 * "nginx -s reload" rotates them), checked line by line, kept sorted by
 * identity for the handshake's lookup, and wiped when the configuration
 * that read them is freed.  No key, nor the file's text, is ever logged.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


static char *ngx_stream_dtls_psk_parse(ngx_conf_t *cf,
    ngx_stream_dtls_psk_store_t *store, u_char *p, u_char *end);
static char *ngx_stream_dtls_psk_line(ngx_conf_t *cf,
    ngx_stream_dtls_psk_store_t *store, u_char *p, u_char *end,
    ngx_uint_t line);
static int ngx_libc_cdecl ngx_stream_dtls_psk_cmp(const void *one,
    const void *two);
static ngx_stream_dtls_psk_t *ngx_stream_dtls_psk_find(
    ngx_stream_dtls_psk_store_t *store, u_char *identity, size_t len);
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

    if (ngx_conf_full_name(cf->cycle, &store->file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_array_init(&store->keys, cf->pool, 16,
                       sizeof(ngx_stream_dtls_psk_t))
        != NGX_OK)
    {
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
    char                   *rv;
    u_char                 *eol;
    ngx_uint_t              i, line;
    ngx_stream_dtls_psk_t  *psk;

    for (line = 1; p < end; line++, p = eol + 1) {

        eol = ngx_strlchr(p, end, LF);
        if (eol == NULL) {
            eol = end;
        }

        rv = ngx_stream_dtls_psk_line(cf, store, p, eol, line);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (store->keys.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "PSK file \"%s\" has no keys", store->file.data);
        return NGX_CONF_ERROR;
    }

    ngx_qsort(store->keys.elts, store->keys.nelts,
              sizeof(ngx_stream_dtls_psk_t), ngx_stream_dtls_psk_cmp);

    psk = store->keys.elts;

    for (i = 1; i < store->keys.nelts; i++) {
        if (ngx_stream_dtls_psk_cmp(&psk[i - 1], &psk[i]) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "PSK file \"%s\", line %ui: duplicate "
                               "identity \"%V\", first at line %ui",
                               store->file.data,
                               ngx_max(psk[i - 1].line, psk[i].line),
                               &psk[i].identity,
                               ngx_min(psk[i - 1].line, psk[i].line));
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_stream_dtls_psk_line(ngx_conf_t *cf, ngx_stream_dtls_psk_store_t *store,
    u_char *p, u_char *end, ngx_uint_t line)
{
    u_char                 *colon, *q;
    size_t                  len, key_len;
    ngx_int_t               hi, lo;
    const char             *reason;
    ngx_stream_dtls_psk_t  *psk;
    u_char                  key[NGX_STREAM_DTLS_PSK_MAX_LEN];

    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }

    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == CR)) {
        end--;
    }

    if (p == end || *p == '#') {
        return NGX_CONF_OK;
    }

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

    key_len = 0;

    for (q = colon + 1; q < end; q += 2) {
        hi = ngx_hextoi(q, 1);
        lo = ngx_hextoi(q + 1, 1);

        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            OPENSSL_cleanse(key, sizeof(key));
            reason = "key is not hexadecimal";
            goto invalid;
        }

        key[key_len++] = (u_char) (hi << 4 | lo);
    }

    psk = ngx_array_push(&store->keys);
    if (psk == NULL) {
        OPENSSL_cleanse(key, sizeof(key));
        return NGX_CONF_ERROR;
    }

    psk->line = line;
    psk->key_len = key_len;
    ngx_memcpy(psk->key, key, key_len);
    OPENSSL_cleanse(key, sizeof(key));

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


static int ngx_libc_cdecl
ngx_stream_dtls_psk_cmp(const void *one, const void *two)
{
    const ngx_stream_dtls_psk_t  *a = one;
    const ngx_stream_dtls_psk_t  *b = two;

    if (a->identity.len != b->identity.len) {
        return (a->identity.len < b->identity.len) ? -1 : 1;
    }

    return ngx_memcmp(a->identity.data, b->identity.data, a->identity.len);
}


static ngx_stream_dtls_psk_t *
ngx_stream_dtls_psk_find(ngx_stream_dtls_psk_store_t *store, u_char *identity,
    size_t len)
{
    ngx_int_t               rc;
    ngx_uint_t              lo, hi, mid;
    ngx_stream_dtls_psk_t  *psk, key;

    key.identity.len = len;
    key.identity.data = identity;

    psk = store->keys.elts;
    lo = 0;
    hi = store->keys.nelts;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        rc = ngx_stream_dtls_psk_cmp(&key, &psk[mid]);

        if (rc == 0) {
            return &psk[mid];
        }

        if (rc < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    return NULL;
}


unsigned int
ngx_stream_dtls_psk_server_cb(SSL *ssl, const char *identity,
    unsigned char *key, unsigned int max_key_len)
{
    u_char                      *p, *last;
    size_t                       len;
    ngx_connection_t            *c;
    ngx_stream_dtls_psk_t       *psk;
    ngx_stream_dtls_conn_t      *ctx;
    ngx_stream_dtls_srv_conf_t  *dscf;
    u_char                       text[NGX_STREAM_DTLS_IDENTITY_MAX_LEN];

    c = SSL_get_ex_data(ssl, ngx_ssl_connection_index);
    dscf = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ngx_ssl_server_conf_index);

    len = identity ? ngx_strlen(identity) : 0;

    psk = NULL;

    if (len && len <= NGX_STREAM_DTLS_IDENTITY_MAX_LEN && dscf->psk) {
        psk = ngx_stream_dtls_psk_find(dscf->psk, (u_char *) identity, len);
    }

    if (psk && psk->key_len <= max_key_len) {
        ngx_memcpy(key, psk->key, psk->key_len);
        return psk->key_len;
    }

    /* the identity comes from the client: log it printable and bounded */

    last = ngx_cpymem(text, identity,
                      ngx_min(len, NGX_STREAM_DTLS_IDENTITY_MAX_LEN));

    for (p = text; p < last; p++) {
        if (*p < 0x20 || *p > 0x7e || *p == '"') {
            *p = '?';
        }
    }

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "DTLS client sent unknown PSK identity \"%*s\"%s",
                  last - text, text,
                  len > NGX_STREAM_DTLS_IDENTITY_MAX_LEN ? "..." : "");

    ctx = ngx_stream_dtls_ssl_conn(ssl);

    ctx->failure = "unknown PSK identity";

    return 0;
}


static void
ngx_stream_dtls_psk_cleanup(void *data)
{
    ngx_stream_dtls_psk_store_t *store = data;

    ngx_uint_t              i;
    ngx_stream_dtls_psk_t  *psk;

    psk = store->keys.elts;

    for (i = 0; i < store->keys.nelts; i++) {
        OPENSSL_cleanse(psk[i].key, sizeof(psk[i].key));
    }
}
