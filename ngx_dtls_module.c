
/*
 * Copyright (C) ngx_dtls authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


#if (NGX_STAT_STUB)
/*
 * A weak reference: loaded into an nginx built without the stub status
 * module (another build), dlopen() still succeeds and nginx itself refuses
 * the module as "not binary compatible" by its signature.
 */
#pragma weak ngx_stat_active
#endif


/* AEAD suites only; CCM8 first, as CoAP (RFC 7252, 9.1.3) requires it */

#define NGX_STREAM_DTLS_PSK_CIPHERS                                           \
    "PSK-AES128-CCM8:PSK-AES128-CCM:PSK-AES128-GCM-SHA256:"                   \
    "PSK-AES256-GCM-SHA384:PSK-CHACHA20-POLY1305:"                            \
    "ECDHE-PSK-CHACHA20-POLY1305"

#define NGX_STREAM_DTLS_CERT_CIPHERS                                          \
    "ECDHE-ECDSA-AES128-CCM8:ECDHE-ECDSA-AES128-GCM-SHA256:"                  \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"            \
    "ECDHE-ECDSA-AES128-CCM:ECDHE-RSA-AES128-GCM-SHA256:"                     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305"


static ngx_int_t ngx_stream_dtls_handler(ngx_stream_session_t *s);
static ngx_int_t ngx_stream_dtls_drop(ngx_connection_t *c);
static ngx_int_t ngx_stream_dtls_log_handler(ngx_stream_session_t *s);
static ngx_int_t ngx_stream_dtls_create_ctx(ngx_conf_t *cf,
    ngx_stream_dtls_srv_conf_t *dscf);
static void ngx_stream_dtls_cleanup_ctx(void *data);
static char *ngx_stream_dtls_check_conf(ngx_cycle_t *cycle, void *conf);
static ngx_int_t ngx_stream_dtls_check_listens(ngx_cycle_t *cycle);
#if (nginx_version >= 1025005)
static ngx_int_t ngx_stream_dtls_check_shared(ngx_cycle_t *cycle);
#endif
static ngx_int_t ngx_stream_dtls_check_servers(ngx_cycle_t *cycle);
static ngx_int_t ngx_stream_dtls_check_proxy(ngx_cycle_t *cycle,
    ngx_stream_core_srv_conf_t *cscf, ngx_stream_dtls_srv_conf_t *dscf);
static void *ngx_stream_dtls_proxy_value(ngx_cycle_t *cycle,
    ngx_stream_core_srv_conf_t *cscf, ngx_str_t *name);
static ngx_int_t ngx_stream_dtls_check_auth(ngx_conf_t *cf,
    ngx_stream_dtls_srv_conf_t *dscf);
#if (OPENSSL_VERSION_NUMBER >= 0x30200000L)
static int ngx_stream_dtls_security_cb(const SSL *ssl, const SSL_CTX *ctx,
    int op, int bits, int nid, void *other, void *ex);
#endif

static ngx_int_t ngx_stream_dtls_preconfiguration(ngx_conf_t *cf);
static void *ngx_stream_dtls_create_main_conf(ngx_conf_t *cf);
static char *ngx_stream_dtls_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_stream_dtls_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_dtls_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_stream_dtls_init(ngx_conf_t *cf);

static char *ngx_stream_dtls_enable(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_dtls_bpf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_dtls_mtu(ngx_conf_t *cf, void *post, void *data);
static char *ngx_stream_dtls_cookie_lifetime(ngx_conf_t *cf, void *post,
    void *data);
static ngx_int_t ngx_stream_dtls_init_module(ngx_cycle_t *cycle);
static void ngx_stream_dtls_exit(ngx_cycle_t *cycle);
static void ngx_stream_dtls_exit_master(ngx_cycle_t *cycle);


#if (OPENSSL_VERSION_NUMBER >= 0x30200000L)
static int (*ngx_stream_dtls_default_security_cb)(const SSL *ssl,
    const SSL_CTX *ctx, int op, int bits, int nid, void *other, void *ex);
#endif


static ngx_conf_bitmask_t  ngx_stream_dtls_protocols[] = {
    { ngx_string("DTLSv1"), NGX_STREAM_DTLS_DTLSv1 },
    { ngx_string("DTLSv1.2"), NGX_STREAM_DTLS_DTLSv1_2 },
    { ngx_null_string, 0 }
};


static ngx_str_t  ngx_stream_dtls_proxy_timeout = ngx_string("proxy_timeout");
static ngx_str_t  ngx_stream_dtls_proxy_protocol_name =
    ngx_string("proxy_protocol");


static ngx_conf_enum_t  ngx_stream_dtls_verify[] = {
    { ngx_string("off"), NGX_STREAM_DTLS_VERIFY_OFF },
    { ngx_string("on"), NGX_STREAM_DTLS_VERIFY_ON },
    { ngx_string("optional"), NGX_STREAM_DTLS_VERIFY_OPTIONAL },
    { ngx_string("optional_no_ca"), NGX_STREAM_DTLS_VERIFY_OPTIONAL_NO_CA },
    { ngx_null_string, 0 }
};


static ngx_conf_num_bounds_t  ngx_stream_dtls_handshake_limit_bounds = {
    ngx_conf_check_num_bounds, 1, NGX_MAX_INT32_VALUE
};


static ngx_conf_post_handler_pt  ngx_stream_dtls_mtu_post =
    ngx_stream_dtls_mtu;

static ngx_conf_post_handler_pt  ngx_stream_dtls_cookie_lifetime_post =
    ngx_stream_dtls_cookie_lifetime;


static ngx_command_t  ngx_stream_dtls_commands[] = {

    { ngx_string("dtls"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_stream_dtls_enable,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, enable),
      NULL },

    { ngx_string("dtls_psk_file"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_stream_dtls_psk_file,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dtls_psk_identity_hint"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, psk_identity_hint),
      NULL },

    { ngx_string("dtls_protocols"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_1MORE,
      ngx_conf_set_bitmask_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, protocols),
      &ngx_stream_dtls_protocols },

    { ngx_string("dtls_ciphers"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, ciphers),
      NULL },

    { ngx_string("dtls_handshake_timeout"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, handshake_timeout),
      NULL },

    { ngx_string("dtls_cookie"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, cookie_exchange),
      NULL },

    { ngx_string("dtls_cookie_lifetime"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, cookie_lifetime),
      &ngx_stream_dtls_cookie_lifetime_post },

    { ngx_string("dtls_cookie_secret"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_stream_dtls_cookie_secret_file,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dtls_session_tickets"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, session_tickets),
      NULL },

    { ngx_string("dtls_session_ticket_key"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_stream_dtls_ticket_key_file,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dtls_certificate"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_array_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, certificates),
      NULL },

    { ngx_string("dtls_certificate_key"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_array_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, certificate_keys),
      NULL },

    { ngx_string("dtls_password_file"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_stream_dtls_password_file,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dtls_verify_client"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, verify),
      &ngx_stream_dtls_verify },

    { ngx_string("dtls_verify_depth"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, verify_depth),
      NULL },

    { ngx_string("dtls_client_certificate"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, client_certificate),
      NULL },

    { ngx_string("dtls_trusted_certificate"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, trusted_certificate),
      NULL },

    { ngx_string("dtls_crl"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, crl),
      NULL },

    { ngx_string("dtls_handshake_limit"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, handshake_limit),
      &ngx_stream_dtls_handshake_limit_bounds },

    { ngx_string("dtls_mtu"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, mtu),
      &ngx_stream_dtls_mtu_post },

    { ngx_string("dtls_proxy_protocol"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_dtls_srv_conf_t, proxy_protocol),
      NULL },

    { ngx_string("dtls_session_zone"),
      NGX_STREAM_SRV_CONF|NGX_CONF_TAKE12,
      ngx_stream_dtls_session_zone,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dtls_connection_id"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE12,
      ngx_stream_dtls_connection_id,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dtls_bpf"),
      NGX_STREAM_MAIN_CONF|NGX_CONF_FLAG,
      ngx_stream_dtls_bpf,
      NGX_STREAM_MAIN_CONF_OFFSET,
      offsetof(ngx_stream_dtls_main_conf_t, bpf),
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_dtls_module_ctx = {
    ngx_stream_dtls_preconfiguration,      /* preconfiguration */
    ngx_stream_dtls_init,                  /* postconfiguration */

    ngx_stream_dtls_create_main_conf,      /* create main configuration */
    ngx_stream_dtls_init_main_conf,        /* init main configuration */

    ngx_stream_dtls_create_srv_conf,       /* create server configuration */
    ngx_stream_dtls_merge_srv_conf         /* merge server configuration */
};


ngx_module_t  ngx_stream_dtls_module = {
    NGX_MODULE_V1,
    &ngx_stream_dtls_module_ctx,           /* module context */
    ngx_stream_dtls_commands,              /* module directives */
    NGX_STREAM_MODULE,                     /* module type */
    NULL,                                  /* init master */
    ngx_stream_dtls_init_module,           /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_stream_dtls_exit,                  /* exit process */
    ngx_stream_dtls_exit_master,           /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * A core module of the same build, for checks that need the whole
 * configuration: its init_conf runs once every block is read, so that
 * worker_processes and worker_connections are final wherever they are
 * written (nginx's events module clones reuseport listens there too).
 */

static ngx_core_module_t  ngx_stream_dtls_check_module_ctx = {
    ngx_string("stream_dtls_check"),
    NULL,
    ngx_stream_dtls_check_conf
};


ngx_module_t  ngx_stream_dtls_check_module = {
    NGX_MODULE_V1,
    &ngx_stream_dtls_check_module_ctx,     /* module context */
    NULL,                                  /* module directives */
    NGX_CORE_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * The directives of the stream proxy that would break a DTLS session,
 * each with its value that ends nothing (the default)
 */

typedef struct {
    ngx_str_t                   name;
    ngx_uint_t                  unlimited;
} ngx_stream_dtls_refused_t;


static ngx_stream_dtls_refused_t  ngx_stream_dtls_proxy_refused[] = {
    { ngx_string("proxy_requests"), 0 },
    { ngx_string("proxy_responses"), NGX_MAX_INT32_VALUE },
    { ngx_null_string, 0 }
};


static ngx_int_t
ngx_stream_dtls_handler(ngx_stream_session_t *s)
{
    ngx_int_t                    rc;
    ngx_buf_t                   *b;
    ngx_connection_t            *c;
    ngx_stream_dtls_conn_t      *ctx;
    ngx_stream_dtls_srv_conf_t  *dscf;
    u_char                       cookie[NGX_STREAM_DTLS_COOKIE_LEN];

    dscf = ngx_stream_get_module_srv_conf(s, ngx_stream_dtls_module);

    if (!dscf->enable) {
        return NGX_DECLINED;
    }

    c = s->connection;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_dtls_module);

    if (ctx) {
        /* called again once the handshake is done */
        return ctx->handshaked ? NGX_OK : NGX_AGAIN;
    }

    if (!ngx_stream_dtls_source_valid(c->sockaddr)) {
        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls datagram from an invalid source dropped");
        return ngx_stream_dtls_drop(c);
    }

    c->log->action = "checking DTLS ClientHello";

    switch (ngx_stream_dtls_hello(c, c->send_chain, dscf->cookie, c->buffer,
                                  cookie))
    {

    case NGX_STREAM_DTLS_HELLO_OK:
        break;

    case NGX_STREAM_DTLS_HELLO_VERIFY:
        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls ClientHello without cookie, "
                       "HelloVerifyRequest sent");
        return ngx_stream_dtls_drop(c);

    case NGX_STREAM_DTLS_HELLO_BAD_COOKIE:
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "DTLS ClientHello with an invalid or expired cookie, "
                      "HelloVerifyRequest sent");
        return ngx_stream_dtls_drop(c);

    case NGX_STREAM_DTLS_HELLO_STRAY:

        /* a session of this worker moved by its CID takes the datagram */

        b = c->buffer;

        rc = ngx_stream_dtls_move_handoff(c, dscf, b->pos, b->last - b->pos);

        if (rc == NGX_OK) {
            return ngx_stream_dtls_drop(c);
        }

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (dscf->zone) {
            rc = ngx_stream_dtls_zone_continue(s, dscf);

            if (rc == NGX_OK) {
                return NGX_OK;
            }

            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }
        }

        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls record of no live session dropped");
        return ngx_stream_dtls_drop(c);

    default: /* NGX_STREAM_DTLS_HELLO_INVALID */
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "DTLS session must start with a ClientHello, "
                      "datagram of %uz bytes dropped",
                      c->buffer ? (size_t) (c->buffer->last - c->buffer->pos)
                                : 0);
        return ngx_stream_dtls_drop(c);
    }

    c->log->action = "DTLS handshaking";

    rc = ngx_stream_dtls_init_session(s, dscf, cookie);

    if (rc == NGX_DECLINED) {
        return ngx_stream_dtls_drop(c);
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_stream_dtls_handshake(s);

    if (rc == NGX_ERROR) {
        return NGX_STREAM_BAD_REQUEST;
    }

    return rc;
}


static ngx_int_t
ngx_stream_dtls_drop(ngx_connection_t *c)
{
    ngx_pool_t  *pool;

    /*
     * Before a valid cookie nothing is kept, and nothing is logged as a
     * session either: close at once, without the log phase.  What follows
     * is ngx_stream_close_connection() without its SSL shutdown (the
     * session has no c->ssl), copied as the function is static in
     * src/stream/ngx_stream_handler.c; the same in nginx 1.22.1, 1.26.3
     * and 1.31.5.
     */

#if (NGX_STAT_STUB)
    (void) ngx_atomic_fetch_add(ngx_stat_active, -1);
#endif

    pool = c->pool;

    ngx_close_connection(c);

    ngx_destroy_pool(pool);

    return NGX_DONE;
}


static ngx_int_t
ngx_stream_dtls_log_handler(ngx_stream_session_t *s)
{
    ngx_stream_dtls_conn_t  *ctx;

    /*
     * The session ends (proxy_timeout, upstream error, return): tell
     * the client with close_notify while the session can still send;
     * the log phase is the last point where it can.
     */

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_dtls_module);

    if (ctx) {
        ngx_stream_dtls_shutdown(ctx);
    }

    return NGX_OK;
}


ngx_stream_dtls_conn_t *
ngx_stream_dtls_get_conn(ngx_connection_t *c)
{
    ngx_stream_session_t  *s;

    s = c->data;

    return ngx_stream_get_module_ctx(s, ngx_stream_dtls_module);
}


/* the dtls configuration of the server at a listening socket's i-th address */

ngx_stream_dtls_srv_conf_t *
ngx_stream_dtls_listening_conf(ngx_listening_t *ls, ngx_uint_t i)
{
    ngx_stream_port_t       *port;
    ngx_stream_conf_ctx_t   *ctx;
    ngx_stream_addr_conf_t  *addr_conf;

    port = ls->servers;

    switch (ls->sockaddr->sa_family) {

#if (NGX_HAVE_INET6)
    case AF_INET6:
        addr_conf = &((ngx_stream_in6_addr_t *) port->addrs)[i].conf;
        break;
#endif

    default: /* AF_INET */
        addr_conf = &((ngx_stream_in_addr_t *) port->addrs)[i].conf;
        break;
    }

#if (nginx_version >= 1025005)
    /* stream virtual servers: the server a session starts in */
    ctx = addr_conf->default_server->ctx;
#else
    ctx = addr_conf->ctx;
#endif

    return ctx->srv_conf[ngx_stream_dtls_module.ctx_index];
}


static ngx_int_t
ngx_stream_dtls_create_ctx(ngx_conf_t *cf, ngx_stream_dtls_srv_conf_t *dscf)
{
    int                  min, max;
    SSL_CTX             *ctx;
    ngx_pool_cleanup_t  *cln;

    ctx = SSL_CTX_new(DTLS_server_method());
    if (ctx == NULL) {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0, "SSL_CTX_new() failed");
        return NGX_ERROR;
    }

    dscf->ssl.ctx = ctx;
    dscf->ssl.log = cf->log;
    dscf->ssl.buffer_size = NGX_SSL_BUFSIZE;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_stream_dtls_cleanup_ctx(&dscf->ssl);
        return NGX_ERROR;
    }

    cln->handler = ngx_stream_dtls_cleanup_ctx;
    cln->data = &dscf->ssl;

    if (SSL_CTX_set_ex_data(ctx, ngx_ssl_server_conf_index, dscf) == 0) {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "SSL_CTX_set_ex_data() failed");
        return NGX_ERROR;
    }

    min = (dscf->protocols & NGX_STREAM_DTLS_DTLSv1) ? DTLS1_VERSION
                                                     : DTLS1_2_VERSION;
    max = (dscf->protocols & NGX_STREAM_DTLS_DTLSv1_2) ? DTLS1_2_VERSION
                                                       : DTLS1_VERSION;

    if (SSL_CTX_set_min_proto_version(ctx, min) != 1
        || SSL_CTX_set_max_proto_version(ctx, max) != 1)
    {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "SSL_CTX_set_min/max_proto_version() failed");
        return NGX_ERROR;
    }

    /*
     * cookies: ours, stateless, before OpenSSL sees the session;
     * MTU: dtls_mtu, not the path MTU of a socket nginx shares;
     * no renegotiation: a second handshake would bypass the cookie
     */

    SSL_CTX_set_options(ctx, SSL_OP_NO_QUERY_MTU
                             | SSL_OP_NO_RENEGOTIATION
                             | SSL_OP_NO_COMPRESSION);

    if (dscf->cookie_exchange) {
        SSL_CTX_set_options(ctx, SSL_OP_COOKIE_EXCHANGE);
    }

    SSL_CTX_set_cookie_generate_cb(ctx, ngx_stream_dtls_generate_cookie_cb);
    SSL_CTX_set_cookie_verify_cb(ctx, ngx_stream_dtls_verify_cookie_cb);

    SSL_CTX_set_info_callback(ctx, ngx_stream_dtls_info_callback);

    if (ngx_stream_dtls_cid_init(cf, dscf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_stream_dtls_session_tickets(cf, dscf) != NGX_OK) {
        return NGX_ERROR;
    }

    /*
     * a Certificate a client sends is reassembled up to this size (100K
     * by default); ngx_stream_dtls_handshake_input() bounds the rest
     */

    SSL_CTX_set_max_cert_list(ctx, NGX_STREAM_DTLS_MAX_HANDSHAKE_MESSAGE);

    /*
     * no record nginx sends is larger than dtls_mtu: its write buffer
     * need not hold 16K of data for the session's life (512 at least)
     */

    SSL_CTX_set_max_send_fragment(ctx, ngx_max(dscf->mtu, 512));

    SSL_CTX_set_read_ahead(ctx, 1);

    if (SSL_CTX_set_session_id_context(ctx, (u_char *) "ngx_dtls", 8) != 1) {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "SSL_CTX_set_session_id_context() failed");
        return NGX_ERROR;
    }

    if (SSL_CTX_set_cipher_list(ctx, (char *) dscf->ciphers.data) != 1) {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "SSL_CTX_set_cipher_list(\"%V\") failed",
                      &dscf->ciphers);
        return NGX_ERROR;
    }

#if (OPENSSL_VERSION_NUMBER >= 0x30200000L)
    /*
     * OpenSSL 3.2 put the CCM8 suites (a 64-bit tag) at security level 0,
     * below the default; CoAP (RFC 7252) makes PSK-AES128-CCM8 and
     * ECDHE-ECDSA-AES128-CCM8 mandatory, and they come first in the
     * default dtls_ciphers: a CCM8 suite that dtls_ciphers names passes,
     * everything else is judged by OpenSSL's own check at its level
     */

    ngx_stream_dtls_default_security_cb = SSL_CTX_get_security_callback(ctx);
    SSL_CTX_set_security_callback(ctx, ngx_stream_dtls_security_cb);
#endif

    if (dscf->certificates
        && ngx_stream_dtls_certificates(cf, dscf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (dscf->psk == NULL) {
        return NGX_OK;
    }

    SSL_CTX_set_psk_server_callback(ctx, ngx_stream_dtls_psk_server_cb);

    if (dscf->psk_identity_hint.len
        && SSL_CTX_use_psk_identity_hint(ctx,
                                      (char *) dscf->psk_identity_hint.data)
           != 1)
    {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "SSL_CTX_use_psk_identity_hint(\"%V\") failed",
                      &dscf->psk_identity_hint);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_stream_dtls_cleanup_ctx(void *data)
{
    ngx_ssl_t  *ssl = data;

    u_char  keys[80];

    /*
     * OpenSSL 3.0 gives the session ticket keys (16 bytes of name, 32 of
     * HMAC key, 32 of AES key, random per SSL_CTX) back to the heap as they
     * are, unless its secure heap is in use: overwritten first.  Then
     * nginx's cleanup, as its certificate loaders keep references of
     * their own.
     */

    ngx_memzero(keys, sizeof(keys));

    (void) SSL_CTX_set_tlsext_ticket_keys(ssl->ctx, keys, sizeof(keys));

    ngx_ssl_cleanup_ctx(ssl);
}


#if (OPENSSL_VERSION_NUMBER >= 0x30200000L)

static int
ngx_stream_dtls_security_cb(const SSL *ssl, const SSL_CTX *ctx, int op,
    int bits, int nid, void *other, void *ex)
{
    const char  *name;

    switch (op & ~SSL_SECOP_PEER) {

    case SSL_SECOP_CIPHER_SUPPORTED:
    case SSL_SECOP_CIPHER_SHARED:
    case SSL_SECOP_CIPHER_CHECK:
        name = SSL_CIPHER_get_name(other);

        if (name && ngx_strstr(name, "CCM8")) {
            return 1;
        }

        break;
    }

    return ngx_stream_dtls_default_security_cb(ssl, ctx, op, bits, nid,
                                               other, ex);
}

#endif


static char *
ngx_stream_dtls_check_conf(ngx_cycle_t *cycle, void *conf)
{
    if (ngx_stream_cycle_get_module_main_conf(cycle, ngx_stream_core_module)
        == NULL)
    {
        return NGX_CONF_OK;
    }

    if (ngx_stream_dtls_check_listens(cycle) != NGX_OK
        || ngx_stream_dtls_check_servers(cycle) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

#if (NGX_HAVE_DTLS_BPF)
    if (ngx_stream_dtls_bpf_check(cycle) != NGX_OK) {
        return NGX_CONF_ERROR;
    }
#endif

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_stream_dtls_check_listens(ngx_cycle_t *cycle)
{
    ngx_uint_t                   i, n;
    ngx_core_conf_t             *ccf;
    ngx_listening_t             *ls;
    ngx_stream_port_t           *port;
    ngx_stream_dtls_srv_conf_t  *dscf;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    ls = cycle->listening.elts;

    for (i = 0; i < cycle->listening.nelts; i++) {

        /* a reuseport listen is cloned for each worker: check it once */

        if (ls[i].handler != ngx_stream_init_connection || ls[i].worker) {
            continue;
        }

        port = ls[i].servers;

        for (n = 0; n < port->naddrs; n++) {

            dscf = ngx_stream_dtls_listening_conf(&ls[i], n);

            if (!dscf->enable) {
                continue;
            }

            if (ls[i].type != SOCK_DGRAM) {
                ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                              "\"dtls\" needs \"listen ... udp\", "
                              "but \"listen %V\" is not udp, in %s:%ui",
                              &ls[i].addr_text, dscf->file, dscf->line);
                return NGX_ERROR;
            }

            if (ccf->worker_processes > 1 && !ls[i].reuseport) {
                ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                              "\"dtls\" with %i worker processes needs "
                              "\"listen %V udp reuseport\", so that every "
                              "datagram of a client reaches one worker, "
                              "in %s:%ui",
                              ccf->worker_processes, &ls[i].addr_text,
                              dscf->file, dscf->line);
                return NGX_ERROR;
            }
        }
    }

#if (nginx_version >= 1025005)
    return ngx_stream_dtls_check_shared(cycle);
#else
    return NGX_OK;
#endif
}


#if (nginx_version >= 1025005)

static ngx_int_t
ngx_stream_dtls_check_shared(ngx_cycle_t *cycle)
{
    ngx_uint_t                     p, a, n;
    ngx_stream_conf_ctx_t         *ctx;
    ngx_stream_conf_addr_t        *addr;
    ngx_stream_conf_port_t        *port;
    ngx_stream_dtls_srv_conf_t    *dscf;
    ngx_stream_core_srv_conf_t   **cscfp;
    ngx_stream_core_main_conf_t   *cmcf;

    /*
     * Stream virtual servers: servers that share a listen are told apart
     * by the SNI of a TLS ClientHello (ngx_stream_ssl_module,
     * ngx_stream_ssl_preread_module); nothing chooses one for a DTLS
     * ClientHello, so a dtls server shares its listen with none.  The
     * listens as the configuration gave them, with the servers of each
     * address, are in cmcf->ports, which lives in the configuration's
     * temporary pool until the new cycle is made.
     */

    cmcf = ngx_stream_cycle_get_module_main_conf(cycle,
                                                 ngx_stream_core_module);

    if (cmcf->ports == NULL) {
        return NGX_OK;
    }

    port = cmcf->ports->elts;

    for (p = 0; p < cmcf->ports->nelts; p++) {

        addr = port[p].addrs.elts;

        for (a = 0; a < port[p].addrs.nelts; a++) {

            if (addr[a].servers.nelts < 2) {
                continue;
            }

            cscfp = addr[a].servers.elts;

            for (n = 0; n < addr[a].servers.nelts; n++) {

                ctx = cscfp[n]->ctx;
                dscf = ctx->srv_conf[ngx_stream_dtls_module.ctx_index];

                if (!dscf->enable) {
                    continue;
                }

                ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                              "\"dtls\" needs \"listen %V\" for itself, "
                              "but %ui servers share it: a DTLS client "
                              "cannot choose one by \"server_name\", "
                              "in %s:%ui",
                              &addr[a].opt.addr_text, addr[a].servers.nelts,
                              dscf->file, dscf->line);
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}

#endif


static ngx_int_t
ngx_stream_dtls_check_servers(ngx_cycle_t *cycle)
{
    ngx_uint_t                     i, limit;
    ngx_event_conf_t              *ecf;
    ngx_stream_dtls_srv_conf_t    *dscf;
    ngx_stream_core_srv_conf_t   **cscfp;
    ngx_stream_core_main_conf_t   *cmcf;

    ecf = ngx_event_get_conf(cycle->conf_ctx, ngx_event_core_module);

    /* a handshake holds a connection; sessions need the other half */

    limit = ngx_min(1024, ecf->connections / 2);

    cmcf = ngx_stream_cycle_get_module_main_conf(cycle,
                                                 ngx_stream_core_module);
    cscfp = cmcf->servers.elts;

    for (i = 0; i < cmcf->servers.nelts; i++) {

        dscf = cscfp[i]->ctx->srv_conf[ngx_stream_dtls_module.ctx_index];

        if (!dscf->enable) {
            continue;
        }

        if (dscf->handshake_limit == NGX_CONF_UNSET_UINT) {
            dscf->handshake_limit = ngx_max(limit, 1);

        } else if (dscf->handshake_limit > ecf->connections) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "\"dtls_handshake_limit %ui\" exceeds "
                          "\"worker_connections %ui\": a handshake holds "
                          "a connection, in %s:%ui",
                          dscf->handshake_limit, ecf->connections,
                          dscf->file, dscf->line);
            return NGX_ERROR;
        }

        if (ngx_stream_dtls_check_proxy(cycle, cscfp[i], dscf) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_stream_dtls_check_proxy(ngx_cycle_t *cycle,
    ngx_stream_core_srv_conf_t *cscf, ngx_stream_dtls_srv_conf_t *dscf)
{
    ngx_flag_t                 *flag;
    ngx_uint_t                 *value;
    ngx_msec_t                 *timeout;
    ngx_stream_dtls_refused_t  *r;

    /*
     * proxy_requests and proxy_responses end a session early, and the
     * client's later records would start a new one, which cannot decrypt
     * them
     */

    for (r = ngx_stream_dtls_proxy_refused; r->name.len; r++) {

        value = ngx_stream_dtls_proxy_value(cycle, cscf, &r->name);

        if (value && *value != r->unlimited) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "\"%V\" cannot be used with \"dtls\": it would "
                          "start a new session for a client's later "
                          "datagrams, which cannot be decrypted there, "
                          "in %s:%ui", &r->name, dscf->file, dscf->line);
            return NGX_ERROR;
        }
    }

    /*
     * the proxy's own PROXY protocol header would go in front of
     * dtls_proxy_protocol's, in the first datagram only; it is "on" (1)
     * up to nginx 1.31.3, and "v1" (1) or "v2" (2) from 1.31.4 on
     */

    flag = ngx_stream_dtls_proxy_value(cycle, cscf,
                                       &ngx_stream_dtls_proxy_protocol_name);

    if (dscf->proxy_protocol && flag && *flag > 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "\"proxy_protocol\" cannot be used with "
                      "\"dtls_proxy_protocol\": it would put its own "
                      "header in front of the first datagram's, in %s:%ui",
                      dscf->file, dscf->line);
        return NGX_ERROR;
    }

    /* what a session may be idle for: ngx_stream_dtls_recv() */

    timeout = ngx_stream_dtls_proxy_value(cycle, cscf,
                                          &ngx_stream_dtls_proxy_timeout);

    dscf->proxy_timeout = timeout ? *timeout : 0;

    return NGX_OK;
}


/*
 * The value of a stream proxy directive in a server: the proxy's
 * configuration is private to it, its command says where the value lives
 * (read from nginx 1.22 to 1.30)
 */

static void *
ngx_stream_dtls_proxy_value(ngx_cycle_t *cycle,
    ngx_stream_core_srv_conf_t *cscf, ngx_str_t *name)
{
    ngx_uint_t      m;
    ngx_command_t  *cmd;

    for (m = 0; cycle->modules[m]; m++) {
        if (ngx_strcmp(cycle->modules[m]->name, "ngx_stream_proxy_module")
            == 0)
        {
            break;
        }
    }

    if (cycle->modules[m] == NULL) {
        return NULL;
    }

    for (cmd = cycle->modules[m]->commands; cmd->name.len; cmd++) {
        if (cmd->name.len == name->len
            && ngx_strncmp(cmd->name.data, name->data, name->len) == 0)
        {
            return (u_char *) cscf->ctx->srv_conf[cycle->modules[m]->ctx_index]
                   + cmd->offset;
        }
    }

    return NULL;
}


static ngx_int_t
ngx_stream_dtls_check_auth(ngx_conf_t *cf, ngx_stream_dtls_srv_conf_t *dscf)
{
    ngx_str_t  *cert;

    /* every client proves who it is, unless the configuration says not */

    if (dscf->psk == NULL && dscf->certificates == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "no \"dtls_psk_file\" or \"dtls_certificate\" is "
                      "defined for \"dtls on\" in %s:%ui",
                      dscf->file, dscf->line);
        return NGX_ERROR;
    }

    if (dscf->certificates == NULL) {
        return NGX_OK;
    }

    if (dscf->certificate_keys == NULL
        || dscf->certificate_keys->nelts < dscf->certificates->nelts)
    {
        cert = dscf->certificates->elts;
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "no \"dtls_certificate_key\" is defined "
                      "for certificate \"%V\" in %s:%ui",
                      &cert[dscf->certificates->nelts - 1],
                      dscf->file, dscf->line);
        return NGX_ERROR;
    }

    /*
     * a mode that admits clients of certificate suites without a verified
     * certificate says so at every start and reload, as does "off": PSK
     * clients are authenticated by their key in every mode
     */

    switch (dscf->verify) {

    case NGX_STREAM_DTLS_VERIFY_OFF:
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "\"dtls_verify_client off\": clients of the server "
                      "in %s:%ui that use certificate suites are asked for "
                      "no certificate and admitted unauthenticated "
                      "($dtls_client_verify is NONE)",
                      dscf->file, dscf->line);
        break;

    case NGX_STREAM_DTLS_VERIFY_ON:
    case NGX_STREAM_DTLS_VERIFY_OPTIONAL:
        if (dscf->client_certificate.len == 0
            && dscf->trusted_certificate.len == 0)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "no \"dtls_client_certificate\" is defined for "
                          "the server with \"dtls_certificate\" in %s:%ui, "
                          "which verifies clients by default: set "
                          "dtls_client_certificate, or dtls_verify_client "
                          "off to accept unauthenticated clients",
                          dscf->file, dscf->line);
            return NGX_ERROR;
        }

        if (dscf->verify == NGX_STREAM_DTLS_VERIFY_OPTIONAL) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "\"dtls_verify_client optional\": clients of the "
                          "server in %s:%ui that use certificate suites and "
                          "send no certificate are admitted unauthenticated "
                          "($dtls_client_verify is NONE)",
                          dscf->file, dscf->line);
        }

        break;

    case NGX_STREAM_DTLS_VERIFY_OPTIONAL_NO_CA:

        /*
         * accepted without a client CA, as nginx's optional_no_ca is:
         * a certificate's key is still proven, for an upstream or a map
         * to pin $dtls_client_fingerprint
         */

        if (dscf->client_certificate.len == 0
            && dscf->trusted_certificate.len == 0)
        {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "\"dtls_verify_client optional_no_ca\" with no "
                          "\"dtls_client_certificate\" or "
                          "\"dtls_trusted_certificate\": clients of the "
                          "server in %s:%ui that use certificate suites are "
                          "admitted unauthenticated with any certificate "
                          "within its validity dates, or none, as no CA can "
                          "verify one ($dtls_client_verify is NONE or "
                          "FAILED:reason)",
                          dscf->file, dscf->line);
            break;
        }

        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "\"dtls_verify_client optional_no_ca\": clients of "
                      "the server in %s:%ui that use certificate suites and "
                      "send no certificate, or one whose issuer is not "
                      "trusted (self-signed, unknown CA), are admitted "
                      "unauthenticated ($dtls_client_verify is NONE or "
                      "FAILED:reason)",
                      dscf->file, dscf->line);
        break;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_stream_dtls_preconfiguration(ngx_conf_t *cf)
{
    return ngx_stream_dtls_add_variables(cf);
}


static void *
ngx_stream_dtls_create_main_conf(ngx_conf_t *cf)
{
    ngx_stream_dtls_main_conf_t  *dmcf;

    dmcf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_dtls_main_conf_t));
    if (dmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     dmcf->bpf_file = NULL;
     *     dmcf->bpf_line = 0;
     *     dmcf->groups = NULL;
     */

    dmcf->bpf = NGX_CONF_UNSET;

    return dmcf;
}


static char *
ngx_stream_dtls_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_stream_dtls_main_conf_t *dmcf = conf;

    ngx_conf_init_value(dmcf->bpf, 0);

    return NGX_CONF_OK;
}


static void *
ngx_stream_dtls_create_srv_conf(ngx_conf_t *cf)
{
    ngx_stream_dtls_srv_conf_t  *dscf;

    dscf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_dtls_srv_conf_t));
    if (dscf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     dscf->ssl = { NULL, NULL, 0 };
     *     dscf->protocols = 0;
     *     dscf->ciphers = { 0, NULL };
     *     dscf->psk_identity_hint = { 0, NULL };
     *     dscf->cookie = NULL;
     *     dscf->client_certificate = { 0, NULL };
     *     dscf->trusted_certificate = { 0, NULL };
     *     dscf->crl = { 0, NULL };
     *     dscf->handshakes = 0;
     *     dscf->handshakes_dropped = 0;
     *     dscf->file = NULL;
     *     dscf->line = 0;
     *     dscf->cid_file = NULL;
     *     dscf->cid_line = 0;
     */

    dscf->enable = NGX_CONF_UNSET;
    dscf->handshake_timeout = NGX_CONF_UNSET_MSEC;
    dscf->handshake_limit = NGX_CONF_UNSET_UINT;
    dscf->mtu = NGX_CONF_UNSET_SIZE;
    dscf->cid_length = NGX_CONF_UNSET_SIZE;
    dscf->proxy_protocol = NGX_CONF_UNSET;
    dscf->psk = NGX_CONF_UNSET_PTR;
    dscf->cookie_exchange = NGX_CONF_UNSET;
    dscf->cookie_lifetime = NGX_CONF_UNSET;
    dscf->cookie_base = NGX_CONF_UNSET_PTR;
    dscf->session_tickets = NGX_CONF_UNSET;
    dscf->ticket_keys = NGX_CONF_UNSET_PTR;
    dscf->certificates = NGX_CONF_UNSET_PTR;
    dscf->certificate_keys = NGX_CONF_UNSET_PTR;
    dscf->passwords = NGX_CONF_UNSET_PTR;
    dscf->verify = NGX_CONF_UNSET_UINT;
    dscf->verify_depth = NGX_CONF_UNSET_UINT;

    return dscf;
}


static char *
ngx_stream_dtls_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_stream_dtls_srv_conf_t *prev = parent;
    ngx_stream_dtls_srv_conf_t *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);

    ngx_conf_merge_bitmask_value(conf->protocols, prev->protocols,
                         (NGX_CONF_BITMASK_SET|NGX_STREAM_DTLS_DTLSv1_2));

    ngx_conf_merge_str_value(conf->ciphers, prev->ciphers, "");
    ngx_conf_merge_str_value(conf->psk_identity_hint,
                             prev->psk_identity_hint, "");

    ngx_conf_merge_msec_value(conf->handshake_timeout,
                              prev->handshake_timeout, 10000);
    /* the default depends on worker_connections: ngx_stream_dtls_check_conf */

    ngx_conf_merge_uint_value(conf->handshake_limit, prev->handshake_limit,
                              NGX_CONF_UNSET_UINT);
    ngx_conf_merge_size_value(conf->mtu, prev->mtu, 1200);
    ngx_conf_merge_value(conf->proxy_protocol, prev->proxy_protocol, 0);
    ngx_conf_merge_size_value(conf->cid_length, prev->cid_length, 0);

    if (conf->cid_file == NULL) {
        conf->cid_file = prev->cid_file;
        conf->cid_line = prev->cid_line;
    }

    ngx_conf_merge_ptr_value(conf->psk, prev->psk, NULL);

    ngx_conf_merge_value(conf->cookie_exchange, prev->cookie_exchange, 1);
    ngx_conf_merge_sec_value(conf->cookie_lifetime, prev->cookie_lifetime, 60);
    ngx_conf_merge_ptr_value(conf->cookie_base, prev->cookie_base, NULL);

    ngx_conf_merge_value(conf->session_tickets, prev->session_tickets, 1);
    ngx_conf_merge_ptr_value(conf->ticket_keys, prev->ticket_keys, NULL);

    ngx_conf_merge_ptr_value(conf->certificates, prev->certificates, NULL);
    ngx_conf_merge_ptr_value(conf->certificate_keys, prev->certificate_keys,
                             NULL);
    ngx_conf_merge_ptr_value(conf->passwords, prev->passwords, NULL);

    ngx_conf_merge_uint_value(conf->verify, prev->verify,
                              NGX_STREAM_DTLS_VERIFY_ON);
    ngx_conf_merge_uint_value(conf->verify_depth, prev->verify_depth, 1);
    ngx_conf_merge_str_value(conf->client_certificate,
                             prev->client_certificate, "");
    ngx_conf_merge_str_value(conf->trusted_certificate,
                             prev->trusted_certificate, "");
    ngx_conf_merge_str_value(conf->crl, prev->crl, "");

    if (conf->file == NULL) {
        conf->file = prev->file;
        conf->line = prev->line;
    }

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    if (ngx_stream_dtls_check_auth(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* a CID record from a new address finds its session through the zone */

    if (conf->cid_length && conf->zone == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"dtls_connection_id\" in %s:%ui needs "
                      "\"dtls_session_zone\" in the server in %s:%ui",
                      conf->cid_file, conf->cid_line, conf->file, conf->line);
        return NGX_CONF_ERROR;
    }

    if (conf->ciphers.len == 0) {
        if (conf->psk && conf->certificates) {
            ngx_str_set(&conf->ciphers, NGX_STREAM_DTLS_PSK_CIPHERS ":"
                                        NGX_STREAM_DTLS_CERT_CIPHERS);

        } else if (conf->psk) {
            ngx_str_set(&conf->ciphers, NGX_STREAM_DTLS_PSK_CIPHERS);

        } else {
            ngx_str_set(&conf->ciphers, NGX_STREAM_DTLS_CERT_CIPHERS);
        }
    }

    if (conf->cookie_exchange) {
        conf->cookie = ngx_stream_dtls_cookie_secret(cf, conf->cookie_lifetime,
                                                     conf->cookie_base);
        if (conf->cookie == NULL) {
            return NGX_CONF_ERROR;
        }

    } else {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "\"dtls_cookie off\": the server in %s:%ui starts a "
                      "handshake for every ClientHello, spoofed ones too",
                      conf->file, conf->line);
    }

    if (ngx_stream_dtls_create_ctx(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_stream_dtls_init(ngx_conf_t *cf)
{
    ngx_stream_handler_pt        *h;
    ngx_stream_core_main_conf_t  *cmcf;

    if (ngx_stream_dtls_bio_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    cmcf = ngx_stream_conf_get_module_main_conf(cf, ngx_stream_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_STREAM_SSL_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_stream_dtls_handler;

    h = ngx_array_push(&cmcf->phases[NGX_STREAM_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_stream_dtls_log_handler;

    return NGX_OK;
}


static char *
ngx_stream_dtls_enable(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_dtls_srv_conf_t *dscf = conf;

    char  *rv;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    /* remembered for the checks made once the whole block is read */

    dscf->file = cf->conf_file->file.name.data;
    dscf->line = cf->conf_file->line;

    return NGX_CONF_OK;
}


static char *
ngx_stream_dtls_bpf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_dtls_main_conf_t *dmcf = conf;

    char  *rv;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);

    if (rv != NGX_CONF_OK) {
        return rv;
    }

#if !(NGX_HAVE_DTLS_BPF)
    if (dmcf->bpf) {
        return "is not supported on this platform";
    }
#endif

    dmcf->bpf_file = cf->conf_file->file.name.data;
    dmcf->bpf_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


static char *
ngx_stream_dtls_mtu(ngx_conf_t *cf, void *post, void *data)
{
    size_t  *mtu = data;

    if (*mtu < 256 || *mtu > 65507) {
        return "must be between 256 and 65507";
    }

    return NGX_CONF_OK;
}


static char *
ngx_stream_dtls_cookie_lifetime(ngx_conf_t *cf, void *post, void *data)
{
    time_t  *lifetime = data;

    if (*lifetime < 1) {
        return "must be at least 1s";
    }

    return NGX_CONF_OK;
}


/*
 * In the master (or the single process), once a new configuration's
 * listening sockets are open: at start and at each reload
 */

static ngx_int_t
ngx_stream_dtls_init_module(ngx_cycle_t *cycle)
{
    if (ngx_stream_dtls_source_filters(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

#if (NGX_HAVE_DTLS_BPF)
    if (ngx_stream_dtls_bpf_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }
#endif

    return NGX_OK;
}


static void
ngx_stream_dtls_exit(ngx_cycle_t *cycle)
{
    ngx_stream_dtls_cookie_wipe();
    ngx_stream_dtls_ticket_wipe();
    ngx_stream_dtls_bio_exit();
    ngx_stream_dtls_record_done();
}


/* the zones' sessions outlive a worker, not the master */

static void
ngx_stream_dtls_exit_master(ngx_cycle_t *cycle)
{
    ngx_stream_dtls_zone_wipe(cycle);
    ngx_stream_dtls_exit(cycle);
}
