
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * Files that hold secrets (PSKs, the cookie secret), read at
 * configuration time: a regular file of bounded size, a warning when
 * others than its owner may read it, and a buffer that the caller wipes
 * and frees with ngx_stream_dtls_free_secret().
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


#define NGX_STREAM_DTLS_SECRET_FILE_MAX  (16 * 1024 * 1024)


ngx_int_t
ngx_stream_dtls_read_secret(ngx_conf_t *cf, const char *what, ngx_str_t *name,
    ngx_str_t *text)
{
    ssize_t          n;
    ngx_int_t        rc;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    ngx_str_null(text);

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.name = *name;
    file.log = cf->log;

    file.fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open %s \"%s\"", what, name->data);
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%s\" failed", name->data);
        goto done;
    }

    if (!ngx_is_file(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s \"%s\" is not a regular file",
                           what, name->data);
        goto done;
    }

    if (ngx_file_access(&fi) & (S_IRGRP|S_IROTH)) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "%s \"%s\" is readable by %s, "
                           "keep it to its owner (chmod 600)",
                           what, name->data,
                           (ngx_file_access(&fi) & S_IROTH)
                           ? "others" : "its group");
    }

    if (ngx_file_size(&fi) > NGX_STREAM_DTLS_SECRET_FILE_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s \"%s\" is larger than 16M", what, name->data);
        goto done;
    }

    text->data = ngx_alloc(ngx_file_size(&fi) + 1, cf->log);
    if (text->data == NULL) {
        goto done;
    }

    text->len = ngx_file_size(&fi);

    n = ngx_read_file(&file, text->data, text->len, 0);

    if (n == NGX_ERROR) {
        goto done;
    }

    if ((size_t) n != text->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           ngx_read_file_n " \"%s\" returned only %z bytes",
                           name->data, n);
        goto done;
    }

    rc = NGX_OK;

done:

    if (rc != NGX_OK) {
        ngx_stream_dtls_free_secret(text);
    }

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed", name->data);
    }

    return rc;
}


void
ngx_stream_dtls_free_secret(ngx_str_t *text)
{
    if (text->data) {
        OPENSSL_cleanse(text->data, text->len);
        ngx_free(text->data);
    }

    ngx_str_null(text);
}
