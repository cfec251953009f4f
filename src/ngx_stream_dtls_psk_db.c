
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * The pre-shared keys in a constant database (tinycdb's cdb format),
 * "dtls_psk_file cdb:FILE": the identity is the record's key, its PSK in
 * hexadecimal the record's value.  The file is memory-mapped and a
 * handshake looks its identity up in the mapping; nothing per identity is
 * held in nginx's memory.  At configuration time (nginx -t, start,
 * reload) every record is checked by the rules of the text file, and the
 * index must find each record, itself and first (no duplicates).
 *
 * A worker looks at the file's inode, size and modification time at most
 * once a second, from the handshake path; a file that changed is mapped
 * and checked as fully as at configuration time before it replaces the
 * mapping in use.  One that fails is logged once and the previous mapping
 * stays in use.  A key is decoded from the mapping straight into the
 * buffer OpenSSL gives the PSK callback: no other copy is made.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include <cdb.h>

#include "ngx_stream_dtls.h"


#define NGX_STREAM_DTLS_PSK_DB_CHECK   1000      /* ms between stats */
#define NGX_STREAM_DTLS_PSK_DB_HEADER  2048      /* 256 (position, size) */


/* what tells a file changed: rename, write, chmod and chown all show */

typedef struct {
    ngx_file_uniq_t             uniq;
    dev_t                       dev;
    off_t                       size;
    struct timespec             mtime;
    struct timespec             ctime;
} ngx_stream_dtls_psk_db_file_t;


struct ngx_stream_dtls_psk_db_s {
    ngx_str_t                       file;
    struct cdb                      cdb;        /* the mapping in use */
    ngx_uint_t                      entries;

    ngx_stream_dtls_psk_db_file_t   mapped;     /* the file of cdb */
    ngx_stream_dtls_psk_db_file_t   seen;       /* the last one tried */
    ngx_err_t                       stat_err;   /* of the last stat */

    ngx_msec_t                      checked;    /* the last stat */

    u_char                          reason[NGX_MAX_ERROR_STR];
};


static char *ngx_stream_dtls_psk_db_map(ngx_stream_dtls_psk_db_t *db,
    ngx_log_t *log, struct cdb *cdb, ngx_file_info_t *fi, ngx_err_t *err,
    ngx_uint_t *warn);
static char *ngx_stream_dtls_psk_db_validate(ngx_stream_dtls_psk_db_t *db,
    struct cdb *cdb, ngx_uint_t *entries);
static char *ngx_stream_dtls_psk_db_entry(ngx_stream_dtls_psk_db_t *db,
    struct cdb *cdb, ngx_uint_t n, unsigned pos, unsigned klen,
    unsigned vlen);
static void ngx_stream_dtls_psk_db_release(struct cdb *cdb);
static const char *ngx_stream_dtls_psk_db_hex(u_char *dst, const u_char *src,
    size_t len);
static void ngx_stream_dtls_psk_db_refresh(ngx_stream_dtls_psk_db_t *db,
    ngx_log_t *log);
static void ngx_stream_dtls_psk_db_file(ngx_stream_dtls_psk_db_file_t *f,
    ngx_file_info_t *fi);
static ngx_uint_t ngx_stream_dtls_psk_db_same(
    ngx_stream_dtls_psk_db_file_t *one, ngx_stream_dtls_psk_db_file_t *two);
static void ngx_stream_dtls_psk_db_cleanup(void *data);


char *
ngx_stream_dtls_psk_db_open(ngx_conf_t *cf, ngx_str_t *file,
    ngx_stream_dtls_psk_db_t **dbp)
{
    char                      *reason;
    ngx_err_t                  err;
    ngx_uint_t                 warn;
    ngx_file_info_t            fi;
    ngx_pool_cleanup_t        *cln;
    ngx_stream_dtls_psk_db_t  *db;

    db = ngx_pcalloc(cf->pool, sizeof(ngx_stream_dtls_psk_db_t));
    if (db == NULL) {
        return NGX_CONF_ERROR;
    }

    db->file = *file;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_stream_dtls_psk_db_cleanup;
    cln->data = db;

    reason = ngx_stream_dtls_psk_db_map(db, cf->log, &db->cdb, &fi, &err,
                                        &warn);

    if (warn) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "PSK database \"%s\" is readable by %s, "
                           "keep it to the workers' user (chmod 600)",
                           file->data, (warn & S_IROTH) ? "others"
                                                        : "its group");
    }

    if (reason) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, err, "PSK database \"%s\": %s",
                           file->data, reason);
        return NGX_CONF_ERROR;
    }

    reason = ngx_stream_dtls_psk_db_validate(db, &db->cdb, &db->entries);

    if (reason) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "PSK database \"%s\"%s",
                           file->data, reason);
        return NGX_CONF_ERROR;
    }

    ngx_stream_dtls_psk_db_release(&db->cdb);

    ngx_stream_dtls_psk_db_file(&db->mapped, &fi);
    db->seen = db->mapped;

    db->checked = ngx_current_msec;

    *dbp = db;

    return NGX_CONF_OK;
}


/*
 * Opens and maps the file; a reason when it cannot be used, and the
 * error of the system call that failed in *err.  *warn has the group and
 * other read bits of a file that others than its owner may read.
 */

static char *
ngx_stream_dtls_psk_db_map(ngx_stream_dtls_psk_db_t *db, ngx_log_t *log,
    struct cdb *cdb, ngx_file_info_t *fi, ngx_err_t *err, ngx_uint_t *warn)
{
    char      *reason;
    ngx_fd_t   fd;

    *err = 0;
    *warn = 0;

    ngx_memzero(cdb, sizeof(struct cdb));

    fd = ngx_open_file(db->file.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        *err = ngx_errno;
        return "cannot be opened";
    }

    reason = NULL;

    if (ngx_fd_info(fd, fi) == NGX_FILE_ERROR) {
        *err = ngx_errno;
        reason = ngx_fd_info_n " failed";
        goto done;
    }

    if (!ngx_is_file(fi)) {
        reason = "is not a regular file";
        goto done;
    }

    *warn = ngx_file_access(fi) & (S_IRGRP|S_IROTH);

    if (ngx_file_size(fi) < NGX_STREAM_DTLS_PSK_DB_HEADER) {
        reason = "is not a cdb file: shorter than its 2048-byte header";
        goto done;
    }

    if (ngx_file_size(fi) > 0xffffffff) {
        reason = "is larger than 4G, the most a cdb file can be";
        goto done;
    }

    if (cdb_init(cdb, fd) != 0) {
        *err = ngx_errno;
        ngx_memzero(cdb, sizeof(struct cdb));
        reason = "cannot be mapped";
        goto done;
    }

    /* the mapping outlives the descriptor */

    cdb->cdb_fd = -1;

done:

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed", db->file.data);
    }

    return reason;
}


/*
 * The whole file: the 256 hash tables after the records and inside the
 * file, the records one after another up to the first table, each entry
 * by the rules of the text file, and each found by the index, first.  A
 * reason (starting with ", " or ": ") when it fails.
 */

static char *
ngx_stream_dtls_psk_db_validate(ngx_stream_dtls_psk_db_t *db,
    struct cdb *cdb, ngx_uint_t *entries)
{
    char           *reason;
    unsigned        pos, klen, vlen, tpos, tlen, fsize, dend;
    ngx_uint_t      i, n;
    const u_char   *mem;

    mem = cdb->cdb_mem;
    fsize = cdb->cdb_fsize;
    dend = cdb->cdb_dend;

    for (i = 0; i < 256; i++) {
        tpos = cdb_unpack(mem + i * 8);
        tlen = cdb_unpack(mem + i * 8 + 4);

        if (tlen
            && (tpos < dend || tpos > fsize || tlen > (fsize - tpos) / 8))
        {
            ngx_sprintf(db->reason, ": hash table %ui is outside the file"
                        " (not a cdb file?)%Z", i);
            return (char *) db->reason;
        }
    }

    n = 0;

    for (pos = NGX_STREAM_DTLS_PSK_DB_HEADER; pos < dend; pos += vlen) {

        n++;

        if (dend - pos < 8) {
            ngx_sprintf(db->reason, ", record %ui: truncated%Z", n);
            return (char *) db->reason;
        }

        klen = cdb_unpack(mem + pos);
        vlen = cdb_unpack(mem + pos + 4);
        pos += 8;

        if (klen > dend - pos || vlen > dend - pos - klen) {
            ngx_sprintf(db->reason, ", record %ui: truncated%Z", n);
            return (char *) db->reason;
        }

        reason = ngx_stream_dtls_psk_db_entry(db, cdb, n, pos, klen, vlen);
        if (reason) {
            return reason;
        }

        pos += klen;
    }

    if (n == 0) {
        return " has no keys";
    }

    *entries = n;

    return NULL;
}


static char *
ngx_stream_dtls_psk_db_entry(ngx_stream_dtls_psk_db_t *db, struct cdb *cdb,
    ngx_uint_t n, unsigned pos, unsigned klen, unsigned vlen)
{
    int            rc;
    u_char        *p, *last;
    const char    *reason;
    const u_char  *id, *q;

    id = cdb->cdb_mem + pos;

    if (klen == 0 || klen > NGX_STREAM_DTLS_IDENTITY_MAX_LEN) {
        reason = "identity must be 1 to 128 bytes";
        goto invalid;
    }

    for (q = id; q < id + klen; q++) {
        if (*q < 0x20 || *q > 0x7e) {
            reason = "identity must be printable ASCII";
            goto invalid;
        }
    }

    reason = ngx_stream_dtls_psk_db_hex(NULL, id + klen, vlen);
    if (reason) {
        goto invalid;
    }

    rc = cdb_find(cdb, id, klen);

    if (rc < 0) {
        reason = "the hash table is corrupt";
        goto invalid;
    }

    if (rc == 0) {
        reason = "not found by the hash table";
        goto invalid;
    }

    if (cdb_keypos(cdb) != pos) {
        reason = "duplicate identity";
        goto invalid;
    }

    return NULL;

invalid:

    /* the identity, printable and bounded; never the key */

    p = ngx_sprintf(db->reason, ", record %ui, identity \"", n);
    last = db->reason + sizeof(db->reason) - 1;

    p = ngx_stream_dtls_psk_printable(p, (u_char *) id, klen);

    p = ngx_snprintf(p, last - p, "\"%s: %s",
                     klen > NGX_STREAM_DTLS_IDENTITY_MAX_LEN ? "..." : "",
                     reason);
    *p = '\0';

    return (char *) db->reason;
}


/*
 * The check read every page of the file: they leave this process's
 * resident set (they stay in the page cache), so that a worker holds
 * only the pages of the identities it looked up.
 */

static void
ngx_stream_dtls_psk_db_release(struct cdb *cdb)
{
#if defined(MADV_DONTNEED)
    (void) madvise((void *) cdb->cdb_mem, cdb->cdb_fsize, MADV_DONTNEED);
#endif
}


/* the key's hex digits checked, and decoded into dst unless NULL */

static const char *
ngx_stream_dtls_psk_db_hex(u_char *dst, const u_char *src, size_t len)
{
    size_t     i;
    ngx_int_t  hi, lo;

    if (len % 2) {
        return "key must be an even number of hex digits";
    }

    if (len / 2 < NGX_STREAM_DTLS_PSK_MIN_LEN
        || len / 2 > NGX_STREAM_DTLS_PSK_MAX_LEN)
    {
        return "key must be 16 to 64 bytes (32 to 128 hex digits)";
    }

    for (i = 0; i < len; i += 2) {
        hi = ngx_hextoi((u_char *) &src[i], 1);
        lo = ngx_hextoi((u_char *) &src[i + 1], 1);

        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            return "key is not hexadecimal";
        }

        if (dst) {
            dst[i / 2] = (u_char) (hi << 4 | lo);
        }
    }

    return NULL;
}


/*
 * The key of an identity, decoded into OpenSSL's buffer: its length, or
 * 0 when the identity is not in the database (or its entry cannot be
 * used, which is logged).
 */

size_t
ngx_stream_dtls_psk_db_key(ngx_stream_dtls_psk_db_t *db, ngx_log_t *log,
    u_char *identity, size_t len, u_char *key, size_t size)
{
    int            rc;
    unsigned       vlen;
    const char    *reason;
    const u_char  *v;

    if (ngx_current_msec - db->checked >= NGX_STREAM_DTLS_PSK_DB_CHECK) {
        db->checked = ngx_current_msec;
        ngx_stream_dtls_psk_db_refresh(db, log);
    }

    rc = cdb_find(&db->cdb, identity, len);

    if (rc <= 0) {
        if (rc < 0) {
            ngx_log_error(NGX_LOG_CRIT, log, 0,
                          "PSK database \"%s\" is corrupt", db->file.data);
        }

        return 0;
    }

    vlen = cdb_datalen(&db->cdb);
    v = cdb_getdata(&db->cdb);

    /* checked when mapped; again, should the file have been written over */

    if (v == NULL || vlen / 2 > size) {
        reason = "key does not fit";
        goto failed;
    }

    reason = ngx_stream_dtls_psk_db_hex(key, v, vlen);
    if (reason) {
        goto failed;
    }

    return vlen / 2;

failed:

    OPENSSL_cleanse(key, size);

    ngx_log_error(NGX_LOG_CRIT, log, 0,
                  "PSK database \"%s\": the entry of the identity is "
                  "invalid: %s (was the file written over?)",
                  db->file.data, reason);

    return 0;
}


/*
 * A file replaced or changed since last looked at is mapped and checked
 * in full, and used in place of the mapping in use; one that fails is
 * logged once, and the mapping in use stays.
 */

static void
ngx_stream_dtls_psk_db_refresh(ngx_stream_dtls_psk_db_t *db, ngx_log_t *log)
{
    char                           *reason;
    ngx_err_t                       err;
    ngx_uint_t                      warn, entries;
    struct cdb                      cdb;
    ngx_file_info_t                 fi;
    ngx_stream_dtls_psk_db_file_t   f;

    if (ngx_file_info(db->file.data, &fi) == NGX_FILE_ERROR) {
        err = ngx_errno;

        if (err != db->stat_err) {
            db->stat_err = err;
            ngx_log_error(NGX_LOG_ERR, log, err,
                          "PSK database \"%s\" cannot be read; the one "
                          "mapped stays in use", db->file.data);
        }

        return;
    }

    db->stat_err = 0;

    ngx_stream_dtls_psk_db_file(&f, &fi);

    if (ngx_stream_dtls_psk_db_same(&f, &db->seen)) {
        return;
    }

    /* tried once: looked at again only when it changes */

    db->seen = f;

    reason = ngx_stream_dtls_psk_db_map(db, log, &cdb, &fi, &err, &warn);

    if (reason) {
        ngx_log_error(NGX_LOG_ERR, log, err,
                      "PSK database \"%s\" not used: it %s; the previous "
                      "one stays in use", db->file.data, reason);
        return;
    }

    /* the file opened is the one to compare with from now on */

    ngx_stream_dtls_psk_db_file(&f, &fi);
    db->seen = f;

    if (ngx_stream_dtls_psk_db_same(&f, &db->mapped)) {
        cdb_free(&cdb);
        return;
    }

    if (warn) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "PSK database \"%s\" is readable by %s, "
                      "keep it to the workers' user (chmod 600)",
                      db->file.data, (warn & S_IROTH) ? "others"
                                                      : "its group");
    }

    reason = ngx_stream_dtls_psk_db_validate(db, &cdb, &entries);

    if (reason) {
        cdb_free(&cdb);
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "PSK database \"%s\" not used%s; the previous one "
                      "stays in use", db->file.data, reason);
        return;
    }

    ngx_stream_dtls_psk_db_release(&cdb);

    cdb_free(&db->cdb);

    db->cdb = cdb;
    db->entries = entries;
    db->mapped = f;

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "PSK database \"%s\" replaced: %ui identities",
                  db->file.data, entries);
}


static void
ngx_stream_dtls_psk_db_file(ngx_stream_dtls_psk_db_file_t *f,
    ngx_file_info_t *fi)
{
    f->uniq = ngx_file_uniq(fi);
    f->dev = fi->st_dev;
    f->size = ngx_file_size(fi);
    f->mtime = fi->st_mtim;
    f->ctime = fi->st_ctim;
}


static ngx_uint_t
ngx_stream_dtls_psk_db_same(ngx_stream_dtls_psk_db_file_t *one,
    ngx_stream_dtls_psk_db_file_t *two)
{
    return one->uniq == two->uniq
           && one->dev == two->dev
           && one->size == two->size
           && one->mtime.tv_sec == two->mtime.tv_sec
           && one->mtime.tv_nsec == two->mtime.tv_nsec
           && one->ctime.tv_sec == two->ctime.tv_sec
           && one->ctime.tv_nsec == two->ctime.tv_nsec;
}


static void
ngx_stream_dtls_psk_db_cleanup(void *data)
{
    ngx_stream_dtls_psk_db_t *db = data;

    if (db->cdb.cdb_mem) {
        cdb_free(&db->cdb);
    }
}
