
/*
 * Copyright (C) ngx_dtls authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


typedef const char *(*ngx_stream_dtls_get_str_pt)(const SSL *ssl);
typedef ngx_int_t (*ngx_stream_dtls_ssl_get_pt)(ngx_connection_t *c,
    ngx_pool_t *pool, ngx_str_t *s);


static ngx_stream_dtls_conn_t *ngx_stream_dtls_established(
    ngx_stream_session_t *s);
static ngx_int_t ngx_stream_dtls_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_dtls_session_reused(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_dtls_ssl_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static const char *ngx_stream_dtls_get_cipher(const SSL *ssl);


static ngx_stream_variable_t  ngx_stream_dtls_vars[] = {

    { ngx_string("dtls_protocol"), NULL, ngx_stream_dtls_variable,
      (uintptr_t) SSL_get_version, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_cipher"), NULL, ngx_stream_dtls_variable,
      (uintptr_t) ngx_stream_dtls_get_cipher, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_psk_identity"), NULL, ngx_stream_dtls_variable,
      (uintptr_t) SSL_get_psk_identity, NGX_STREAM_VAR_CHANGEABLE, 0 },

    { ngx_string("dtls_session_reused"), NULL,
      ngx_stream_dtls_session_reused, 0, NGX_STREAM_VAR_CHANGEABLE, 0 },

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


static ngx_stream_dtls_conn_t *
ngx_stream_dtls_established(ngx_stream_session_t *s)
{
    ngx_stream_dtls_conn_t  *ctx;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_dtls_module);

    return (ctx && ctx->handshaked) ? ctx : NULL;
}


static ngx_int_t
ngx_stream_dtls_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_stream_dtls_get_str_pt  get = (ngx_stream_dtls_get_str_pt) data;

    const char              *str;
    ngx_stream_dtls_conn_t  *ctx;

    ctx = ngx_stream_dtls_established(s);

    str = ctx ? get(ctx->ssl) : NULL;

    if (str == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ngx_strlen(str);
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = (u_char *) str;

    return NGX_OK;
}


static ngx_int_t
ngx_stream_dtls_session_reused(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_stream_dtls_conn_t  *ctx;

    ctx = ngx_stream_dtls_established(s);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = 1;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = (u_char *) (SSL_session_reused(ctx->ssl) ? "r" : ".");

    return NGX_OK;
}


/*
 * nginx's own $ssl_* getters, which read c->ssl->connection: given a
 * c->ssl for the length of the call, as the session is not an nginx SSL
 * connection (nginx's SSL close path does not fit a shared UDP socket)
 */

static ngx_int_t
ngx_stream_dtls_ssl_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_stream_dtls_ssl_get_pt  get = (ngx_stream_dtls_ssl_get_pt) data;

    ngx_int_t                rc;
    ngx_str_t                str;
    ngx_connection_t        *c;
    ngx_ssl_connection_t     sc;
    ngx_stream_dtls_conn_t  *ctx;

    ctx = ngx_stream_dtls_established(s);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    c = s->connection;

    ngx_memzero(&sc, sizeof(ngx_ssl_connection_t));
    sc.connection = ctx->ssl;

    c->ssl = &sc;
    rc = get(c, c->pool, &str);
    c->ssl = NULL;

    if (rc != NGX_OK) {
        return rc;
    }

    v->len = str.len;
    v->data = str.data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static const char *
ngx_stream_dtls_get_cipher(const SSL *ssl)
{
    return SSL_get_cipher_name(ssl);
}
