
/*
 * Copyright (C) ngx_dtls authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


typedef ngx_int_t (*ngx_stream_dtls_ssl_get_pt)(ngx_connection_t *c,
    ngx_pool_t *pool, ngx_str_t *s);


typedef struct {
    ngx_stream_dtls_ssl_get_pt  get;
    ngx_uint_t                  cstring;    /* OpenSSL's own, no length */
} ngx_stream_dtls_getter_t;


static ngx_int_t ngx_stream_dtls_session_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_dtls_counter_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_dtls_continued_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_dtls_zone_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_dtls_number(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, ngx_uint_t n);
static ngx_int_t ngx_stream_dtls_get_psk_identity(ngx_connection_t *c,
    ngx_pool_t *pool, ngx_str_t *s);


/*
 * The values of a session, taken once its handshake is done, while the
 * SSL object lives: it is freed then for most sessions.  The getters are
 * nginx's own $ssl_* ones.
 */

static ngx_stream_dtls_getter_t  ngx_stream_dtls_getters[] = {
    { ngx_ssl_get_protocol, 1 },
    { ngx_ssl_get_cipher_name, 1 },
    { ngx_stream_dtls_get_psk_identity, 1 },
    { ngx_ssl_get_session_reused, 0 },
    { ngx_ssl_get_session_id, 0 },
    { ngx_ssl_get_server_name, 0 },
    { ngx_ssl_get_client_verify, 0 },
    { ngx_ssl_get_subject_dn, 0 },
    { ngx_ssl_get_issuer_dn, 0 },
    { ngx_ssl_get_serial_number, 0 },
    { ngx_ssl_get_fingerprint, 0 },
    { ngx_ssl_get_client_v_end, 0 },
    { ngx_stream_dtls_proxy_protocol_ssl, 0 }   /* no variable */
};

#define NGX_STREAM_DTLS_NVARS                                                 \
    (sizeof(ngx_stream_dtls_getters) / sizeof(ngx_stream_dtls_getter_t))


/*
 * The order of the values in dtls_session_zone: first those that say who
 * the client is, which the PROXY protocol header is made of
 */

static ngx_uint_t  ngx_stream_dtls_pack_order[] = {
    NGX_STREAM_DTLS_VAR_PROTOCOL,
    NGX_STREAM_DTLS_VAR_CIPHER,
    NGX_STREAM_DTLS_VAR_PSK_IDENTITY,
    NGX_STREAM_DTLS_VAR_SERVER_NAME,
    NGX_STREAM_DTLS_VAR_PP2_SSL,
    3, 4, 6, 7, 8, 9, 10, 11
};

#define NGX_STREAM_DTLS_PACK_WHO  5


static ngx_stream_variable_t  ngx_stream_dtls_vars[] = {

    { ngx_string("dtls_protocol"), NULL, ngx_stream_dtls_session_variable,
      0, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_cipher"), NULL, ngx_stream_dtls_session_variable,
      1, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_psk_identity"), NULL, ngx_stream_dtls_session_variable,
      NGX_STREAM_DTLS_VAR_PSK_IDENTITY, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_session_reused"), NULL,
      ngx_stream_dtls_session_variable, 3, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_session_id"), NULL, ngx_stream_dtls_session_variable,
      4, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_server_name"), NULL, ngx_stream_dtls_session_variable,
      5, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_client_verify"), NULL,
      ngx_stream_dtls_session_variable, 6, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_client_s_dn"), NULL, ngx_stream_dtls_session_variable,
      7, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_client_i_dn"), NULL, ngx_stream_dtls_session_variable,
      8, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_client_serial"), NULL,
      ngx_stream_dtls_session_variable, 9, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_client_fingerprint"), NULL,
      ngx_stream_dtls_session_variable, 10, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_client_v_end"), NULL,
      ngx_stream_dtls_session_variable, 11, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_session_continued"), NULL,
      ngx_stream_dtls_continued_variable, 0, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_zone_sessions"), NULL, ngx_stream_dtls_zone_variable,
      0, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("dtls_zone_evictions"), NULL, ngx_stream_dtls_zone_variable,
      1, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("dtls_zone_continued"), NULL, ngx_stream_dtls_zone_variable,
      2, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("dtls_zone_dropped_auth"), NULL,
      ngx_stream_dtls_zone_variable, 3 + NGX_STREAM_DTLS_ZONE_DROPPED_AUTH,
      NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("dtls_zone_dropped_replay"), NULL,
      ngx_stream_dtls_zone_variable, 3 + NGX_STREAM_DTLS_ZONE_DROPPED_REPLAY,
      NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("dtls_zone_dropped_epoch"), NULL,
      ngx_stream_dtls_zone_variable, 3 + NGX_STREAM_DTLS_ZONE_DROPPED_EPOCH,
      NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("dtls_zone_dropped_malformed"), NULL,
      ngx_stream_dtls_zone_variable,
      3 + NGX_STREAM_DTLS_ZONE_DROPPED_MALFORMED,
      NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("dtls_zone_moved"), NULL, ngx_stream_dtls_zone_variable,
      3 + NGX_STREAM_DTLS_ZONE_DROPPED, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("dtls_handshakes"), NULL, ngx_stream_dtls_counter_variable,
      offsetof(ngx_stream_dtls_srv_conf_t, handshakes),
      NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("dtls_handshakes_dropped"), NULL,
      ngx_stream_dtls_counter_variable,
      offsetof(ngx_stream_dtls_srv_conf_t, handshakes_dropped),
      NGX_STREAM_VAR_NOCACHEABLE, 0 },

      ngx_stream_null_variable
};


ngx_int_t
ngx_stream_dtls_add_variables(ngx_conf_t *cf)
{
    ngx_stream_variable_t  *var, *v;

    for (v = ngx_stream_dtls_vars; v->name.len; v++) {
        var = ngx_stream_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* this worker's counters of the session's server */

static ngx_int_t
ngx_stream_dtls_counter_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_stream_dtls_srv_conf_t  *dscf;

    dscf = ngx_stream_get_module_srv_conf(s, ngx_stream_dtls_module);

    return ngx_stream_dtls_number(s, v,
                                  *(ngx_uint_t *) ((u_char *) dscf + data));
}


/* the server's zone's counters, of all workers */

static ngx_int_t
ngx_stream_dtls_zone_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_stream_dtls_srv_conf_t  *dscf;

    dscf = ngx_stream_get_module_srv_conf(s, ngx_stream_dtls_module);

    if (dscf->zone == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_stream_dtls_number(s, v,
                                  ngx_stream_dtls_zone_counter(dscf->zone,
                                                               data));
}


static ngx_int_t
ngx_stream_dtls_number(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, ngx_uint_t n)
{
    u_char  *p;

    p = ngx_pnalloc(s->connection->pool, NGX_ATOMIC_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%ui", n) - p;
    v->data = p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* "c" for a session continued from the zone, as "r" for a resumed one */

static ngx_int_t
ngx_stream_dtls_continued_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_stream_dtls_conn_t  *ctx;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_dtls_module);

    if (ctx == NULL || !ctx->handshaked) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = 1;
    v->data = (u_char *) (ctx->continued ? "c" : ".");
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_stream_dtls_session_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_stream_dtls_conn_t  *ctx;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_dtls_module);

    if (ctx == NULL || !ctx->handshaked || ctx->vars == NULL
        || ctx->vars[data].data == NULL)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ctx->vars[data].len;
    v->data = ctx->vars[data].data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * The values of ctx->ssl in one block that replaces the last one (a new
 * handshake of the client changes them).  nginx's getters read
 * c->ssl->connection: they are given a c->ssl for the length of the
 * call, as the session is not an nginx SSL connection (nginx's SSL close
 * path does not fit a shared UDP socket); in nginx 1.22.1, 1.26.3 and
 * 1.31.5 the getters read nothing else of it.
 */

ngx_int_t
ngx_stream_dtls_capture_variables(ngx_stream_dtls_conn_t *ctx)
{
    u_char                *p;
    size_t                 size;
    ngx_int_t              rc;
    ngx_str_t             *vars, str[NGX_STREAM_DTLS_NVARS];
    ngx_uint_t             i;
    ngx_pool_t            *pool;
    ngx_connection_t      *c;
    ngx_ssl_connection_t   sc;

    c = ctx->connection;

    pool = ngx_create_pool(1024, c->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&sc, sizeof(ngx_ssl_connection_t));
    sc.connection = ctx->ssl;

    c->ssl = &sc;

    size = sizeof(str);
    rc = NGX_OK;

    for (i = 0; i < NGX_STREAM_DTLS_NVARS; i++) {
        ngx_str_null(&str[i]);

        rc = ngx_stream_dtls_getters[i].get(c, pool, &str[i]);
        if (rc != NGX_OK) {
            break;
        }

        if (str[i].data && ngx_stream_dtls_getters[i].cstring) {
            str[i].len = ngx_strlen(str[i].data);
        }

        size += str[i].len;
    }

    c->ssl = NULL;

    vars = (rc == NGX_OK) ? ngx_alloc(size, c->log) : NULL;

    if (vars == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    p = (u_char *) (vars + NGX_STREAM_DTLS_NVARS);

    for (i = 0; i < NGX_STREAM_DTLS_NVARS; i++) {
        vars[i].len = str[i].len;
        vars[i].data = str[i].data ? p : NULL;
        p = ngx_cpymem(p, str[i].data, str[i].len);
    }

    ngx_destroy_pool(pool);

    if (ctx->vars) {
        ngx_free(ctx->vars);
    }

    ctx->vars = vars;

    return NGX_OK;
}


/*
 * The values for dtls_session_zone: each a flag (found), a 2-byte length
 * and its bytes, as many as fit in size, those that say who the client is
 * first; another that does not fit (a certificate's long names) is kept
 * as not found.  0: one of the first does not fit, and a session
 * continued could not say who it is.
 */

size_t
ngx_stream_dtls_pack_variables(ngx_stream_dtls_conn_t *ctx, u_char *buf,
    size_t size)
{
    u_char      *p;
    size_t       room;
    ngx_str_t   *v;
    ngx_uint_t   i;

    p = buf;

    for (i = 0; i < NGX_STREAM_DTLS_NVARS; i++) {
        v = &ctx->vars[ngx_stream_dtls_pack_order[i]];
        room = size - (p - buf);

        if (v->data && v->len + 3 <= room) {
            *p++ = 1;
            *p++ = (u_char) (v->len >> 8);
            *p++ = (u_char) v->len;
            p = ngx_cpymem(p, v->data, v->len);
            continue;
        }

        if (v->data && i < NGX_STREAM_DTLS_PACK_WHO) {
            return 0;
        }

        if (room < 3) {
            break;
        }

        *p++ = 0;
        *p++ = 0;
        *p++ = 0;
    }

    return p - buf;
}


ngx_int_t
ngx_stream_dtls_unpack_variables(ngx_stream_dtls_conn_t *ctx, u_char *p,
    size_t len)
{
    u_char      *q, *last;
    size_t       n;
    ngx_str_t   *vars, *v;
    ngx_uint_t   i;

    vars = ngx_alloc(NGX_STREAM_DTLS_NVARS * sizeof(ngx_str_t) + len,
                     ctx->connection->log);
    if (vars == NULL) {
        return NGX_ERROR;
    }

    q = (u_char *) (vars + NGX_STREAM_DTLS_NVARS);
    last = p + len;

    for (i = 0; i < NGX_STREAM_DTLS_NVARS; i++) {
        v = &vars[ngx_stream_dtls_pack_order[i]];

        ngx_str_null(v);

        if (last - p < 3) {
            continue;
        }

        n = ngx_stream_dtls_read_uint16(p + 1);

        if (p[0] == 0 || (size_t) (last - p - 3) < n) {
            p += 3;
            continue;
        }

        v->len = n;
        v->data = q;
        q = ngx_cpymem(q, p + 3, n);
        p += 3 + n;
    }

    if (ctx->vars) {
        ngx_free(ctx->vars);
    }

    ctx->vars = vars;

    return NGX_OK;
}


static ngx_int_t
ngx_stream_dtls_get_psk_identity(ngx_connection_t *c, ngx_pool_t *pool,
    ngx_str_t *s)
{
    const char  *identity;

    identity = SSL_get_psk_identity(c->ssl->connection);

    s->data = (u_char *) identity;

    return NGX_OK;
}
