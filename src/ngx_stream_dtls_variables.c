
/*
 * Copyright (C) ngx_dtls authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


typedef ngx_int_t (*ngx_stream_dtls_ssl_get_pt)(ngx_connection_t *c,
    ngx_pool_t *pool, ngx_str_t *s);


static ngx_int_t ngx_stream_dtls_static_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_dtls_ssl_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_dtls_counter_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_dtls_get(ngx_stream_session_t *s,
    ngx_stream_dtls_ssl_get_pt get, ngx_str_t *str);
static ngx_int_t ngx_stream_dtls_get_psk_identity(ngx_connection_t *c,
    ngx_pool_t *pool, ngx_str_t *s);


static ngx_stream_variable_t  ngx_stream_dtls_vars[] = {

    { ngx_string("dtls_protocol"), NULL, ngx_stream_dtls_static_variable,
      (uintptr_t) ngx_ssl_get_protocol, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_cipher"), NULL, ngx_stream_dtls_static_variable,
      (uintptr_t) ngx_ssl_get_cipher_name, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_psk_identity"), NULL, ngx_stream_dtls_static_variable,
      (uintptr_t) ngx_stream_dtls_get_psk_identity,
      NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_session_reused"), NULL, ngx_stream_dtls_static_variable,
      (uintptr_t) ngx_ssl_get_session_reused, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_session_id"), NULL, ngx_stream_dtls_ssl_variable,
      (uintptr_t) ngx_ssl_get_session_id, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_server_name"), NULL, ngx_stream_dtls_ssl_variable,
      (uintptr_t) ngx_ssl_get_server_name, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_client_verify"), NULL, ngx_stream_dtls_ssl_variable,
      (uintptr_t) ngx_ssl_get_client_verify, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_client_s_dn"), NULL, ngx_stream_dtls_ssl_variable,
      (uintptr_t) ngx_ssl_get_subject_dn, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_client_i_dn"), NULL, ngx_stream_dtls_ssl_variable,
      (uintptr_t) ngx_ssl_get_issuer_dn, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_client_serial"), NULL, ngx_stream_dtls_ssl_variable,
      (uintptr_t) ngx_ssl_get_serial_number, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_client_fingerprint"), NULL,
      ngx_stream_dtls_ssl_variable, (uintptr_t) ngx_ssl_get_fingerprint,
      NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_client_v_end"), NULL, ngx_stream_dtls_ssl_variable,
      (uintptr_t) ngx_ssl_get_client_v_end, NGX_STREAM_VAR_CHANGEABLE, 0 },

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
    u_char                      *p;
    ngx_stream_dtls_srv_conf_t  *dscf;

    dscf = ngx_stream_get_module_srv_conf(s, ngx_stream_dtls_module);

    p = ngx_pnalloc(s->connection->pool, NGX_ATOMIC_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%ui", *(ngx_uint_t *) ((u_char *) dscf + data))
             - p;
    v->data = p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* the getters that return OpenSSL's own strings, as nginx's do */

static ngx_int_t
ngx_stream_dtls_static_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_int_t  rc;
    ngx_str_t  str;

    rc = ngx_stream_dtls_get(s, (ngx_stream_dtls_ssl_get_pt) data, &str);

    if (rc != NGX_OK || str.data == NULL) {
        v->not_found = 1;
        return rc;
    }

    v->len = ngx_strlen(str.data);
    v->data = str.data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_stream_dtls_ssl_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_int_t  rc;
    ngx_str_t  str;

    rc = ngx_stream_dtls_get(s, (ngx_stream_dtls_ssl_get_pt) data, &str);

    if (rc != NGX_OK || str.data == NULL) {
        v->not_found = 1;
        return rc;
    }

    v->len = str.len;
    v->data = str.data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * nginx's own $ssl_* getters read c->ssl->connection: they are given a
 * c->ssl for the length of the call, as the session is not an nginx SSL
 * connection (nginx's SSL close path does not fit a shared UDP socket)
 */

static ngx_int_t
ngx_stream_dtls_get(ngx_stream_session_t *s, ngx_stream_dtls_ssl_get_pt get,
    ngx_str_t *str)
{
    ngx_int_t                rc;
    ngx_connection_t        *c;
    ngx_ssl_connection_t     sc;
    ngx_stream_dtls_conn_t  *ctx;

    ngx_str_null(str);

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_dtls_module);

    if (ctx == NULL || !ctx->handshaked) {
        return NGX_OK;
    }

    c = s->connection;

    ngx_memzero(&sc, sizeof(ngx_ssl_connection_t));
    sc.connection = ctx->ssl;

    c->ssl = &sc;
    rc = get(c, c->pool, str);
    c->ssl = NULL;

    return rc;
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
