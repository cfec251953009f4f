
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * Session tickets (RFC 5077) under keys of the module's, not OpenSSL's
 * random keys of each SSL_CTX, which a reload redraws and which no other
 * instance has.  The keys come from dtls_session_ticket_key files, in the
 * format of nginx's ssl_session_ticket_key (48 bytes: name, AES-128 key,
 * HMAC-SHA256 key of 16; 80 bytes: name, HMAC key, AES-256 key): the
 * first encrypts, every one decrypts, so that instances sharing the files
 * resume each other's sessions and keys rotate without a full handshake.
 * Without a file, one random key is drawn in the master process the first
 * time a configuration needs it and kept in static memory across reloads,
 * so tickets outlive reloads of one instance; it is wiped at exit, and the
 * keys of files with the configuration that read them.  No key is ever
 * logged, only the names, which every ticket carries in the clear.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>


static ngx_int_t ngx_stream_dtls_ticket_random_key(ngx_conf_t *cf,
    ngx_stream_dtls_srv_conf_t *dscf);
static int ngx_stream_dtls_ticket_key_cb(SSL *ssl, unsigned char *name,
    unsigned char *iv, EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc);
static ngx_int_t ngx_stream_dtls_ticket_init(ngx_connection_t *c,
    ngx_stream_dtls_ticket_key_t *key, unsigned char *iv,
    EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc);
static void ngx_stream_dtls_ticket_key_cleanup(void *data);


static ngx_stream_dtls_ticket_key_t  ngx_stream_dtls_ticket_random;
static ngx_uint_t                    ngx_stream_dtls_ticket_random_set;


char *
ngx_stream_dtls_ticket_key_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_stream_dtls_srv_conf_t *dscf = conf;

    ngx_str_t                     *value, name, text;
    ngx_uint_t                     i;
    ngx_pool_cleanup_t            *cln;
    ngx_stream_dtls_ticket_key_t  *key, **keyp, **keys;

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (dscf->ticket_keys == NGX_CONF_UNSET_PTR) {
        dscf->ticket_keys = ngx_array_create(cf->pool, 2,
                                       sizeof(ngx_stream_dtls_ticket_key_t *));
        if (dscf->ticket_keys == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    /*
     * each key in a block of its own, which never moves: the array that
     * grows holds pointers only
     */

    key = ngx_pcalloc(cf->pool, sizeof(ngx_stream_dtls_ticket_key_t));
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_stream_dtls_ticket_key_cleanup;
    cln->data = key;

    if (ngx_stream_dtls_read_secret(cf, "session ticket key file", &name,
                                    &text)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (text.len != 48 && text.len != 80) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "session ticket key file \"%s\" has %uz bytes, "
                           "48 or 80 are needed (\"openssl rand 80\")",
                           name.data, text.len);
        ngx_stream_dtls_free_secret(&text);
        return NGX_CONF_ERROR;
    }

    key->size = text.len;
    ngx_memcpy(key->name, text.data, 16);

    if (text.len == 48) {
        ngx_memcpy(key->aes_key, text.data + 16, 16);
        ngx_memcpy(key->hmac_key, text.data + 32, 16);

    } else {
        ngx_memcpy(key->hmac_key, text.data + 16, 32);
        ngx_memcpy(key->aes_key, text.data + 48, 32);
    }

    ngx_stream_dtls_free_secret(&text);

    /* a second key of one name would never decrypt a ticket */

    keys = dscf->ticket_keys->elts;

    for (i = 0; i < dscf->ticket_keys->nelts; i++) {
        if (ngx_memcmp(keys[i]->name, key->name, 16) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "session ticket key file \"%s\" has the key "
                               "name of an earlier one, a copy of it?",
                               name.data);
            return NGX_CONF_ERROR;
        }
    }

    keyp = ngx_array_push(dscf->ticket_keys);
    if (keyp == NULL) {
        return NGX_CONF_ERROR;
    }

    *keyp = key;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_stream_dtls_session_tickets(ngx_conf_t *cf,
    ngx_stream_dtls_srv_conf_t *dscf)
{
    SSL_CTX  *ctx;

    ctx = dscf->ssl.ctx;

    if (!dscf->session_tickets) {

        /* a resumption is by session ID, in the worker's session cache */

        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        return NGX_OK;
    }

    if (dscf->ticket_keys == NULL
        && ngx_stream_dtls_ticket_random_key(cf, dscf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx,
                                             ngx_stream_dtls_ticket_key_cb)
        != 1)
    {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "SSL_CTX_set_tlsext_ticket_key_evp_cb() failed");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_stream_dtls_ticket_random_key(ngx_conf_t *cf,
    ngx_stream_dtls_srv_conf_t *dscf)
{
    ngx_stream_dtls_ticket_key_t  **keyp;

    /*
     * drawn once, before the workers fork, and kept for the next
     * configurations: a ticket issued before a reload resumes after it
     */

    if (!ngx_stream_dtls_ticket_random_set) {
        if (RAND_bytes(ngx_stream_dtls_ticket_random.name,
                       sizeof(ngx_stream_dtls_ticket_random.name)) != 1
            || RAND_priv_bytes(ngx_stream_dtls_ticket_random.hmac_key,
                        sizeof(ngx_stream_dtls_ticket_random.hmac_key)) != 1
            || RAND_priv_bytes(ngx_stream_dtls_ticket_random.aes_key,
                        sizeof(ngx_stream_dtls_ticket_random.aes_key)) != 1)
        {
            ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0, "RAND_bytes() failed");
            ngx_stream_dtls_ticket_wipe();
            return NGX_ERROR;
        }

        ngx_stream_dtls_ticket_random.size = 80;
        ngx_stream_dtls_ticket_random_set = 1;
    }

    /* the array is the configuration's, the key is not */

    dscf->ticket_keys = ngx_array_create(cf->pool, 1,
                                       sizeof(ngx_stream_dtls_ticket_key_t *));
    if (dscf->ticket_keys == NULL) {
        return NGX_ERROR;
    }

    keyp = ngx_array_push(dscf->ticket_keys);
    if (keyp == NULL) {
        return NGX_ERROR;
    }

    *keyp = &ngx_stream_dtls_ticket_random;

    return NGX_OK;
}


static int
ngx_stream_dtls_ticket_key_cb(SSL *ssl, unsigned char *name,
    unsigned char *iv, EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
    ngx_uint_t                      i;
    ngx_connection_t               *c;
    ngx_stream_dtls_srv_conf_t     *dscf;
    ngx_stream_dtls_ticket_key_t  **keys;

    c = SSL_get_ex_data(ssl, ngx_ssl_connection_index);
    dscf = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl),
                               ngx_ssl_server_conf_index);

    keys = dscf->ticket_keys->elts;

    if (enc == 1) {
        ngx_log_debug2(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls session ticket encrypt, key: \"%*xs\"",
                       (size_t) 16, keys[0]->name);

        if (ngx_stream_dtls_ticket_init(c, keys[0], iv, ectx, hctx, 1)
            != NGX_OK)
        {
            return -1;
        }

        ngx_memcpy(name, keys[0]->name, 16);

        return 1;
    }

    for (i = 0; i < dscf->ticket_keys->nelts; i++) {
        if (ngx_memcmp(name, keys[i]->name, 16) == 0) {
            break;
        }
    }

    if (i == dscf->ticket_keys->nelts) {

        /* another instance's, or a retired key's: a full handshake */

        ngx_log_debug2(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls session ticket decrypt, key: \"%*xs\" "
                       "not found", (size_t) 16, name);
        return 0;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "dtls session ticket decrypt, key: \"%*xs\"%s",
                   (size_t) 16, name, i == 0 ? " (default)" : "");

    if (ngx_stream_dtls_ticket_init(c, keys[i], iv, ectx, hctx, 0)
        != NGX_OK)
    {
        return -1;
    }

    /* a ticket of an older key is renewed under the first */

    return (i == 0) ? 1 : 2;
}


static ngx_int_t
ngx_stream_dtls_ticket_init(ngx_connection_t *c,
    ngx_stream_dtls_ticket_key_t *key, unsigned char *iv,
    EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
    size_t             size;
    OSSL_PARAM         params[3];
    const EVP_CIPHER  *cipher;

    if (key->size == 48) {
        cipher = EVP_aes_128_cbc();
        size = 16;

    } else {
        cipher = EVP_aes_256_cbc();
        size = 32;
    }

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
                                                  key->hmac_key, size);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();

    if (EVP_MAC_CTX_set_params(hctx, params) != 1) {
        ngx_ssl_error(NGX_LOG_ALERT, c->log, 0,
                      "EVP_MAC_CTX_set_params() failed");
        return NGX_ERROR;
    }

    if (enc) {
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) != 1) {
            ngx_ssl_error(NGX_LOG_ALERT, c->log, 0, "RAND_bytes() failed");
            return NGX_ERROR;
        }

        if (EVP_EncryptInit_ex(ectx, cipher, NULL, key->aes_key, iv) != 1) {
            ngx_ssl_error(NGX_LOG_ALERT, c->log, 0,
                          "EVP_EncryptInit_ex() failed");
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (EVP_DecryptInit_ex(ectx, cipher, NULL, key->aes_key, iv) != 1) {
        ngx_ssl_error(NGX_LOG_ALERT, c->log, 0,
                      "EVP_DecryptInit_ex() failed");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_stream_dtls_ticket_key_cleanup(void *data)
{
    ngx_stream_dtls_ticket_key_t  *key = data;

    OPENSSL_cleanse(key, sizeof(ngx_stream_dtls_ticket_key_t));
}


void
ngx_stream_dtls_ticket_wipe(void)
{
    OPENSSL_cleanse(&ngx_stream_dtls_ticket_random,
                    sizeof(ngx_stream_dtls_ticket_key_t));

    ngx_stream_dtls_ticket_random_set = 0;
}
