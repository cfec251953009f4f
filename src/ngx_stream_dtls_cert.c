
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * Certificates: the server's own, loaded by nginx's loaders (chains,
 * RSA and ECDSA pairs, password files), and the verification of client
 * certificates.  Verification is on unless the configuration says
 * otherwise, and a certificate that fails it ends the handshake with an
 * alert, except what "optional_no_ca" lets through.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


static int ngx_stream_dtls_verify_callback(int ok, X509_STORE_CTX *store);


ngx_int_t
ngx_stream_dtls_certificates(ngx_conf_t *cf, ngx_stream_dtls_srv_conf_t *dscf)
{
    int  mode;

    if (ngx_ssl_certificates(cf, &dscf->ssl, dscf->certificates,
                             dscf->certificate_keys, dscf->passwords)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (dscf->verify == NGX_STREAM_DTLS_VERIFY_OFF) {
        SSL_CTX_set_verify(dscf->ssl.ctx, SSL_VERIFY_NONE, NULL);
        return NGX_OK;
    }

    if (ngx_ssl_client_certificate(cf, &dscf->ssl, &dscf->client_certificate,
                                   dscf->verify_depth)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_ssl_trusted_certificate(cf, &dscf->ssl,
                                    &dscf->trusted_certificate,
                                    dscf->verify_depth)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_ssl_crl(cf, &dscf->ssl, &dscf->crl) != NGX_OK) {
        return NGX_ERROR;
    }

    /* nginx's loaders ask for optional verification; ours decides */

    mode = SSL_VERIFY_PEER;

    if (dscf->verify == NGX_STREAM_DTLS_VERIFY_ON) {
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }

    SSL_CTX_set_verify(dscf->ssl.ctx, mode, ngx_stream_dtls_verify_callback);

    return NGX_OK;
}


static int
ngx_stream_dtls_verify_callback(int ok, X509_STORE_CTX *store)
{
    int                          err, depth;
    SSL                         *ssl;
    char                        *subject;
    X509                        *cert;
    ngx_connection_t            *c;
    ngx_stream_dtls_conn_t      *ctx;
    ngx_stream_dtls_srv_conf_t  *dscf;

    if (ok) {
        return 1;
    }

    ssl = X509_STORE_CTX_get_ex_data(store,
                                     SSL_get_ex_data_X509_STORE_CTX_idx());
    c = SSL_get_ex_data(ssl, ngx_ssl_connection_index);
    dscf = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ngx_ssl_server_conf_index);

    err = X509_STORE_CTX_get_error(store);
    depth = X509_STORE_CTX_get_error_depth(store);

    if (dscf->verify == NGX_STREAM_DTLS_VERIFY_OPTIONAL_NO_CA
        && ngx_ssl_verify_error_optional(err))
    {
        /* the verdict is left to $dtls_client_verify */

        ngx_log_debug2(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls client certificate accepted without CA: "
                       "(%d:%s)", err, X509_verify_cert_error_string(err));
        return 1;
    }

    cert = X509_STORE_CTX_get_current_cert(store);
    subject = cert ? X509_NAME_oneline(X509_get_subject_name(cert), NULL, 0)
                   : NULL;

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "DTLS client certificate verify error: (%d:%s), "
                  "depth %d, subject \"%s\"",
                  err, X509_verify_cert_error_string(err), depth,
                  subject ? subject : "");

    OPENSSL_free(subject);

    ctx = ngx_stream_dtls_ssl_conn(ssl);

    if (ctx->failure == NULL) {
        ctx->failure = "client certificate verify error";
    }

    return 0;
}


char *
ngx_stream_dtls_password_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_dtls_srv_conf_t *dscf = conf;

    ngx_str_t  *value;

    if (dscf->passwords != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    dscf->passwords = ngx_ssl_read_password_file(cf, &value[1]);

    if (dscf->passwords == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
