
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * What the DTLS tools share (dtls_client, dtls_load, dtls_floor,
 * dtls_record_diff): the cipher lists, a PSK given as hex (-k), the PSK
 * callbacks of both sides, a DTLS 1.2 context with a cipher list (and a
 * client's certificate), and the monotonic clock.
 * Included by each tool, which is built from its one .c file, beside
 * addr.h.
 */


#ifndef _NGX_DTLS_TOOLS_DTLS_H_INCLUDED_
#define _NGX_DTLS_TOOLS_DTLS_H_INCLUDED_


#include <ctype.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>


/* the DTLS 1.2 suites ngx_dtls offers by default, with a PSK and with
 * certificates */

#define TOOL_PSK_CIPHERS                                                     \
    "PSK-AES128-GCM-SHA256:PSK-AES128-CCM8:PSK-AES256-GCM-SHA384:"           \
    "PSK-CHACHA20-POLY1305:ECDHE-PSK-CHACHA20-POLY1305"

#define TOOL_CERT_CIPHERS                                                    \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-CCM8:"                 \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"           \
    "ECDHE-ECDSA-AES128-CCM:ECDHE-RSA-AES128-GCM-SHA256:"                    \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305"


/* the PSK of a tool: the client sends it, the server knows only it */

typedef struct {
    const char              *identity;
    long                     identities;    /* > 0: IDENTITY-%07ld */
    unsigned char            key[256];
    size_t                   key_len;
} tool_psk_t;

static tool_psk_t  tool_psk;


/* hex digits, two a byte, into at most max bytes */

static int
parse_hex(const char *s, unsigned char *out, size_t max, size_t *len)
{
    size_t        i, n;
    unsigned int  b;

    n = strlen(s);
    if (n == 0 || n % 2 || n / 2 > max) {
        return -1;
    }

    for (i = 0; i < n; i += 2) {
        if (!isxdigit((unsigned char) s[i])
            || !isxdigit((unsigned char) s[i + 1])
            || sscanf(s + i, "%2x", &b) != 1)
        {
            return -1;
        }
        out[i / 2] = (unsigned char) b;
    }

    *len = n / 2;
    return 0;
}


/* -k HEXKEY: the key of tool_psk; -1, said on stderr, if not hex */

static int
tool_psk_key(const char *tool, const char *hex)
{
    if (parse_hex(hex, tool_psk.key, sizeof(tool_psk.key), &tool_psk.key_len)
        != 0)
    {
        fprintf(stderr, "%s: invalid hex key\n", tool);
        return -1;
    }

    return 0;
}


static unsigned int
tool_psk_client_cb(SSL *ssl, const char *hint, char *identity,
    unsigned int max_identity_len, unsigned char *psk,
    unsigned int max_psk_len)
{
    size_t  n;

    (void) ssl;
    (void) hint;

    if (tool_psk.key_len == 0 || tool_psk.key_len > max_psk_len) {
        return 0;
    }

    if (tool_psk.identities > 0) {
        n = (size_t) snprintf(identity, max_identity_len, "%s-%07ld",
                              tool_psk.identity,
                              random() % tool_psk.identities);

    } else {
        n = strlen(tool_psk.identity);

        if (n + 1 <= max_identity_len) {
            memcpy(identity, tool_psk.identity, n + 1);
        }
    }

    if (n + 1 > max_identity_len) {
        return 0;
    }

    memcpy(psk, tool_psk.key, tool_psk.key_len);

    return (unsigned int) tool_psk.key_len;
}


static unsigned int
tool_psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk,
    unsigned int max_psk_len)
{
    (void) ssl;

    if (identity == NULL || strcmp(identity, tool_psk.identity) != 0
        || tool_psk.key_len > max_psk_len)
    {
        return 0;
    }

    memcpy(psk, tool_psk.key, tool_psk.key_len);

    return (unsigned int) tool_psk.key_len;
}


/*
 * A DTLS 1.2 context of a side, without path MTU discovery, with a
 * cipher list and the PSK callback of its side.  CCM8 suites (64-bit
 * tags) are below the default security level in some OpenSSL builds:
 * a list that names them lowers the level.
 */

static SSL_CTX *
tool_ctx_new(const char *tool, int server, const char *ciphers)
{
    char     *list;
    size_t    len;
    SSL_CTX  *c;

    c = SSL_CTX_new(server ? DTLS_server_method() : DTLS_client_method());
    if (c == NULL) {
        ERR_print_errors_fp(stderr);
        return NULL;
    }

    if (SSL_CTX_set_min_proto_version(c, DTLS1_2_VERSION) != 1
        || SSL_CTX_set_max_proto_version(c, DTLS1_2_VERSION) != 1)
    {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(c);
        return NULL;
    }

    SSL_CTX_set_options(c, SSL_OP_NO_QUERY_MTU);

    len = strlen(ciphers);
    list = malloc(len + sizeof(":@SECLEVEL=0"));
    if (list == NULL) {
        SSL_CTX_free(c);
        return NULL;
    }

    memcpy(list, ciphers, len + 1);

    if (strstr(list, "CCM8") && strstr(list, "@SECLEVEL") == NULL) {
        memcpy(list + len, ":@SECLEVEL=0", sizeof(":@SECLEVEL=0"));
    }

    if (SSL_CTX_set_cipher_list(c, list) != 1) {
        fprintf(stderr, "%s: invalid cipher list \"%s\"\n", tool, ciphers);
        free(list);
        SSL_CTX_free(c);
        return NULL;
    }

    free(list);

    if (server) {
        SSL_CTX_set_psk_server_callback(c, tool_psk_server_cb);

    } else {
        SSL_CTX_set_psk_client_callback(c, tool_psk_client_cb);
    }

    return c;
}


/*
 * A client's context (tool_ctx_new()) with a certificate chain (PEM, leaf
 * first) and its key (the chain's file when key is NULL), if cert is not
 * NULL (inline: not warned of in the tools without certificates)
 */

static inline SSL_CTX *
tool_client_ctx(const char *tool, const char *ciphers, const char *cert,
    const char *key)
{
    SSL_CTX  *c;

    c = tool_ctx_new(tool, 0, ciphers);
    if (c == NULL || cert == NULL) {
        return c;
    }

    key = key ? key : cert;

    if (SSL_CTX_use_certificate_chain_file(c, cert) != 1
        || SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1
        || SSL_CTX_check_private_key(c) != 1)
    {
        fprintf(stderr, "%s: cannot use certificate \"%s\" with key "
                "\"%s\"\n", tool, cert, key);
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(c);
        return NULL;
    }

    return c;
}


/* inline: a tool that keeps no time is not warned of it */

static inline int64_t
tool_now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}


#endif /* _NGX_DTLS_TOOLS_DTLS_H_INCLUDED_ */
