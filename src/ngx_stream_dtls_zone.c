
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * dtls_session_zone: established DTLS sessions in shared memory, so that
 * a session outlives its nginx session (proxy_timeout, a sleeping
 * device), its worker (a reload, a crash) and is served by any worker.
 *
 * An entry is made once a handshake with an AEAD suite is done: the
 * record keys of both directions, the next write sequence number, the
 * replay window, the client's address and port and the server's, who it
 * is and the values of its $dtls_* variables, at most 512 bytes.  It
 * goes when the client sends close_notify or a fatal alert, when no
 * authenticated record came for the zone's timeout, or when the zone is
 * full and a new session needs room: the least recently used is evicted.
 *
 * A record from a session's address that reaches a worker with no nginx
 * session for it is looked up here; if it authenticates, a new nginx
 * session goes on with the DTLS session.  Every record a worker opens is
 * checked against the zone's replay window, and every record sealed takes
 * its sequence number from the zone, under the zone's lock: two processes
 * serving one session (an old worker finishing and a new one) never
 * reuse a sequence number nor accept a replay.
 *
 * A session with a connection ID (cid.c) is found by its CID too: a
 * tls12_cid record from an address the zone does not know moves the
 * session there if it authenticates and is newer than every record
 * received in the session (RFC 9146 6); anything else moves nothing.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


#define NGX_STREAM_DTLS_ZONE_ENTRY  512


typedef struct {
    ngx_rbtree_t                rbtree;
    ngx_rbtree_node_t           sentinel;
    ngx_rbtree_t                cids;       /* the index of CIDs */
    ngx_rbtree_node_t           cid_sentinel;
    ngx_queue_t                 queue;      /* the least recent last */
    uint64_t                    ids;
    ngx_uint_t                  sessions;
    ngx_uint_t                  evictions;
    ngx_uint_t                  continued;
    ngx_uint_t                  moved;      /* to a CID record's address */

    /* records dropped, by reason: counted without the lock */
    ngx_atomic_t                dropped[NGX_STREAM_DTLS_ZONE_DROPPED];
} ngx_stream_dtls_zone_sh_t;


struct ngx_stream_dtls_zone_s {
    ngx_stream_dtls_zone_sh_t  *sh;
    ngx_slab_pool_t            *shpool;
    time_t                      timeout;
    ngx_shm_zone_t             *shm_zone;
};


struct ngx_stream_dtls_zone_node_s {
    ngx_rbtree_node_t           node;       /* key: a hash of the addresses */
    ngx_queue_t                 queue;
    uint64_t                    id;
    time_t                      last;       /* authenticated record */
    ngx_stream_dtls_record_t    read;
    ngx_stream_dtls_record_t    write;
    u_char                      random[SSL3_RANDOM_SIZE];
    u_char                      peer[SHA256_DIGEST_LENGTH];
    socklen_t                   socklen;
    socklen_t                   local_socklen;
    u_char                      sockaddr[sizeof(struct sockaddr_in6)];
    u_char                      local_sockaddr[sizeof(struct sockaddr_in6)];
    u_short                     vars_len;
    u_char                      vars[1];
};


/*
 * A session with a CID has an entry in the index of CIDs too, allocated
 * apart: the entries of sessions without one stay within 512 bytes
 */

typedef struct {
    ngx_rbtree_node_t             node;     /* key: a hash of the CID */
    ngx_stream_dtls_zone_node_t  *entry;
} ngx_stream_dtls_zone_cid_t;


static ngx_int_t ngx_stream_dtls_zone_init(ngx_shm_zone_t *shm_zone,
    void *data);
static uint32_t ngx_stream_dtls_zone_hash(ngx_connection_t *c);
static ngx_stream_dtls_zone_node_t *ngx_stream_dtls_zone_lookup(
    ngx_stream_dtls_zone_t *zone, ngx_connection_t *c, uint32_t hash);
static ngx_stream_dtls_zone_cid_t *ngx_stream_dtls_zone_cid_find(
    ngx_stream_dtls_zone_t *zone, u_char *cid, size_t len);
static ngx_stream_dtls_zone_node_t *ngx_stream_dtls_zone_cid_lookup(
    ngx_stream_dtls_zone_t *zone, u_char *cid, size_t len);
static ngx_stream_dtls_zone_node_t *ngx_stream_dtls_zone_node(
    ngx_stream_dtls_conn_t *ctx);
static void ngx_stream_dtls_zone_delete(ngx_stream_dtls_zone_t *zone,
    ngx_stream_dtls_zone_node_t *node);
static void ngx_stream_dtls_zone_expire(ngx_stream_dtls_zone_t *zone,
    ngx_uint_t n);


char *
ngx_stream_dtls_session_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_dtls_srv_conf_t *dscf = conf;

    u_char                  *p;
    ssize_t                  size;
    time_t                   timeout;
    ngx_str_t               *value, name, s;
    ngx_uint_t               i;
    ngx_shm_zone_t          *shm_zone;
    ngx_stream_dtls_zone_t  *zone;

    if (dscf->zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", it must be name:size",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small", &value[1]);
        return NGX_CONF_ERROR;
    }

    /* an hour: a sleeping device's session, within OpenSSL's 2 hours */

    timeout = 3600;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            timeout = ngx_parse_time(&s, 1);

            if (timeout == (time_t) NGX_ERROR || timeout < 1) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid timeout \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_stream_dtls_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "dtls_session_zone \"%V\" is used by another "
                           "server: each server needs a zone of its own",
                           &name);
        return NGX_CONF_ERROR;
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_stream_dtls_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->timeout = timeout;
    zone->shm_zone = shm_zone;

    shm_zone->init = ngx_stream_dtls_zone_init;
    shm_zone->data = zone;

    dscf->zone = zone;

    return NGX_CONF_OK;
}


/* a reload keeps the zone, and its sessions, when its size is the same */

static ngx_int_t
ngx_stream_dtls_zone_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_stream_dtls_zone_t  *ozone = data;

    size_t                   len;
    ngx_slab_pool_t         *shpool;
    ngx_stream_dtls_zone_t  *zone;

    zone = shm_zone->data;

    if (ozone) {
        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    zone->shpool = shpool;

    if (shm_zone->shm.exists) {
        zone->sh = shpool->data;
        return NGX_OK;
    }

    zone->sh = ngx_slab_alloc(shpool, sizeof(ngx_stream_dtls_zone_sh_t));
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(zone->sh, sizeof(ngx_stream_dtls_zone_sh_t));

    shpool->data = zone->sh;

    ngx_rbtree_init(&zone->sh->rbtree, &zone->sh->sentinel,
                    ngx_rbtree_insert_value);
    ngx_rbtree_init(&zone->sh->cids, &zone->sh->cid_sentinel,
                    ngx_rbtree_insert_value);
    ngx_queue_init(&zone->sh->queue);

    len = sizeof(" in dtls_session_zone \"\"") + shm_zone->shm.name.len;

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in dtls_session_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone evicts a session: no "no memory" error for it */

    shpool->log_nomem = 0;

    return NGX_OK;
}


/*
 * The session just established (or renewed) enters the zone, replacing
 * any earlier one of its address; a session that cannot be kept there
 * goes on all the same, in its nginx session only
 */

ngx_int_t
ngx_stream_dtls_zone_add(ngx_stream_dtls_conn_t *ctx)
{
    size_t                        size, vars;
    uint32_t                      hash;
    ngx_uint_t                    evicted;
    ngx_connection_t             *c;
    ngx_stream_dtls_zone_t       *zone;
    ngx_stream_dtls_zone_cid_t   *cid;
    ngx_stream_dtls_zone_node_t  *node, *old;
    u_char                        packed[NGX_STREAM_DTLS_ZONE_ENTRY];

    c = ctx->connection;
    zone = ctx->conf->zone;
    cid = NULL;

    if (c->socklen > sizeof(node->sockaddr)
        || c->local_socklen > sizeof(node->local_sockaddr))
    {
        return NGX_DECLINED;
    }

    size = offsetof(ngx_stream_dtls_zone_node_t, vars);

    vars = ngx_stream_dtls_pack_variables(ctx, packed,
                                          NGX_STREAM_DTLS_ZONE_ENTRY - size);

    if (vars == 0) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "DTLS session not kept in dtls_session_zone \"%V\": "
                      "its PSK identity, server name and PROXY protocol "
                      "values take more than an entry's %d bytes",
                      &zone->shm_zone->shm.name, NGX_STREAM_DTLS_ZONE_ENTRY);
        ngx_stream_dtls_zone_forget(ctx);
        return NGX_DECLINED;
    }

    size += vars;

    hash = ngx_stream_dtls_zone_hash(c);

    ngx_shmtx_lock(&zone->shpool->mutex);

    ngx_stream_dtls_zone_expire(zone, 2);

    old = ngx_stream_dtls_zone_lookup(zone, c, hash);

    if (old) {
        ngx_stream_dtls_zone_delete(zone, old);
    }

    /* a CID minted twice (2^-48 at 6 bytes) is the new session's */

    if (ctx->read.cid_len) {
        old = ngx_stream_dtls_zone_cid_lookup(zone, ctx->read.cid,
                                              ctx->read.cid_len);
        if (old) {
            ngx_stream_dtls_zone_delete(zone, old);
        }
    }

    evicted = 0;

    for ( ;; ) {
        node = ngx_slab_alloc_locked(zone->shpool, size);

        if (node && ctx->read.cid_len) {
            cid = ngx_slab_alloc_locked(zone->shpool,
                                        sizeof(ngx_stream_dtls_zone_cid_t));
            if (cid == NULL) {
                ngx_slab_free_locked(zone->shpool, node);
                node = NULL;
            }
        }

        if (node || ngx_queue_empty(&zone->sh->queue)) {
            break;
        }

        /* full: the least recently used session gives way */

        old = ngx_queue_data(ngx_queue_last(&zone->sh->queue),
                             ngx_stream_dtls_zone_node_t, queue);
        ngx_stream_dtls_zone_delete(zone, old);

        zone->sh->evictions++;
        evicted++;
    }

    if (node == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_log_error(NGX_LOG_CRIT, c->log, 0,
                      "DTLS session not kept: dtls_session_zone \"%V\" "
                      "is too small for one", &zone->shm_zone->shm.name);
        return NGX_DECLINED;
    }

    node->node.key = hash;
    node->id = ++zone->sh->ids;
    node->last = ngx_time();
    node->read = ctx->read;
    node->write = ctx->write;
    ngx_memcpy(node->random, ctx->random, SSL3_RANDOM_SIZE);
    ngx_memcpy(node->peer, ctx->peer, SHA256_DIGEST_LENGTH);
    node->socklen = c->socklen;
    ngx_memcpy(node->sockaddr, c->sockaddr, c->socklen);
    node->local_socklen = c->local_socklen;
    ngx_memcpy(node->local_sockaddr, c->local_sockaddr, c->local_socklen);
    node->vars_len = (u_short) vars;
    ngx_memcpy(node->vars, packed, vars);

    ngx_rbtree_insert(&zone->sh->rbtree, &node->node);
    ngx_queue_insert_head(&zone->sh->queue, &node->queue);

    if (cid) {
        cid->node.key = ngx_crc32_short(node->read.cid, node->read.cid_len);
        cid->entry = node;
        ngx_rbtree_insert(&zone->sh->cids, &cid->node);
    }

    zone->sh->sessions++;

    ctx->node = node;
    ctx->node_id = node->id;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (evicted) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "dtls_session_zone \"%V\" full: %ui least recently "
                      "used session%s evicted", &zone->shm_zone->shm.name,
                      evicted, evicted == 1 ? "" : "s");
    }

    ngx_explicit_memzero(packed, sizeof(packed));

    return NGX_OK;
}


/*
 * The first datagram of a new nginx session that is not a ClientHello:
 * a record of a DTLS session in the zone, perhaps.  NGX_OK: the nginx
 * session goes on with it, c->buffer holds the first record's plaintext;
 * NGX_DECLINED: nothing is kept, nothing is answered.
 */

ngx_int_t
ngx_stream_dtls_zone_continue(ngx_stream_session_t *s,
    ngx_stream_dtls_srv_conf_t *dscf)
{
    size_t                        len, used, vars, cid_len;
    ssize_t                       n;
    uint64_t                      seq;
    uint32_t                      hash;
    ngx_int_t                     rc;
    ngx_uint_t                    moving;
    ngx_buf_t                    *b, *plain;
    ngx_str_t                    *identity;
    ngx_connection_t             *c;
    ngx_stream_dtls_conn_t       *ctx;
    ngx_stream_dtls_zone_t       *zone;
    ngx_stream_dtls_zone_node_t  *node;
    u_char                        packed[NGX_STREAM_DTLS_ZONE_ENTRY];

    c = s->connection;
    zone = dscf->zone;
    b = c->buffer;

    if (b == NULL || b->last == b->pos) {
        return NGX_DECLINED;
    }

    hash = ngx_stream_dtls_zone_hash(c);

    ctx = ngx_stream_dtls_conn_create(s, dscf);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = NULL;
    moving = 0;
    cid_len = dscf->cid_length;

    /*
     * a CID record is its CID's session's, even from an address the zone
     * has another session of (a port given again): that one gives way if
     * the record moves its own
     */

    if (cid_len
        && b->pos[0] == NGX_STREAM_DTLS_RECORD_CID
        && (size_t) (b->last - b->pos)
           >= NGX_STREAM_DTLS_RECORD_HEADER_LEN + cid_len)
    {
        node = ngx_stream_dtls_zone_cid_lookup(zone, b->pos + 11, cid_len);

        moving = (node && ngx_stream_dtls_zone_lookup(zone, c, hash) != node);
    }

    if (node == NULL) {
        node = ngx_stream_dtls_zone_lookup(zone, c, hash);
    }

    if (node == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_DECLINED;
    }

    ctx->read = node->read;
    ctx->write = node->write;
    ngx_memcpy(ctx->random, node->random, SSL3_RANDOM_SIZE);
    ngx_memcpy(ctx->peer, node->peer, SHA256_DIGEST_LENGTH);
    vars = node->vars_len;
    ngx_memcpy(packed, node->vars, vars);

    ctx->node = node;
    ctx->node_id = node->id;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    rc = ngx_stream_dtls_unpack_variables(ctx, packed, vars);

    ngx_explicit_memzero(packed, sizeof(packed));

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    /* the header goes in front of the first record's plaintext too */

    if (dscf->proxy_protocol) {
        rc = ngx_stream_dtls_proxy_protocol(ctx);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {

            /* kept by a configuration without dtls_proxy_protocol */

            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "DTLS session of the zone not continued: it has "
                          "no values for dtls_proxy_protocol");
            return NGX_DECLINED;
        }
    }

    len = b->last - b->pos;

    /*
     * the move: the first record of the datagram that authenticates is
     * newer than every record of the session (RFC 9146 6), whatever the
     * records before it
     */

    if (moving) {
        if (ngx_stream_dtls_move_record(&ctx->read, zone, b->pos, len, &seq)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        if (ngx_stream_dtls_zone_move(ctx, seq) != NGX_OK) {
            ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                           "dtls record with a known connection ID "
                           "from a new address dropped: not the newest");
            return NGX_DECLINED;
        }
    }

    plain = ngx_create_temp_buf(c->pool, ctx->pp_len + len);
    if (plain == NULL) {
        return NGX_ERROR;
    }

    ctx->handshaked = 1;

    n = ngx_stream_dtls_session_records(c, ctx, b->pos, len, plain->pos,
                                        ctx->pp_len + len, &used);

    if (n == NGX_DONE) {
        ngx_stream_dtls_shutdown(ctx);
        return NGX_DECLINED;
    }

    if (n <= 0) {
        /* nothing authenticated: the session is not touched */
        return NGX_DECLINED;
    }

    if (used < len
        && ngx_stream_dtls_session_keep(ctx, b->pos + used, len - used)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /*
     * an identity removed from dtls_psk_file (and nginx reloaded), or
     * from its database, ends its sessions as they come back
     */

    identity = &ctx->vars[NGX_STREAM_DTLS_VAR_PSK_IDENTITY];

    if (identity->data && dscf->psk
        && !ngx_stream_dtls_psk_known(dscf->psk, c->log, identity))
    {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "DTLS session of a PSK identity no longer in "
                      "dtls_psk_file ended");
        ngx_stream_dtls_zone_remove(ctx);
        return NGX_DECLINED;
    }

    /* $bytes_received counts the plaintext, not the first record */

    s->received -= len - n;

    plain->last = plain->pos + n;
    c->buffer = plain;

    ctx->continued = 1;
    ctx->data_mtu = dscf->mtu - ngx_stream_dtls_record_overhead(&ctx->write);

    ngx_stream_dtls_set_io(c, ctx);
    ngx_stream_dtls_move_index(ctx);

    if (ctx->in_len) {
        c->read->ready = 1;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);
    zone->sh->continued++;
    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "dtls session continued from the zone");

    return NGX_OK;
}


/*
 * A record of the session opened (seq, by the keys ctx holds): the
 * zone's window decides whether it is new.  NGX_DECLINED: a replay, seen
 * by another process; NGX_DONE: the session has left the zone.
 */

ngx_int_t
ngx_stream_dtls_zone_received(ngx_stream_dtls_conn_t *ctx, uint64_t seq)
{
    ngx_int_t                     rc;
    ngx_stream_dtls_zone_t       *zone;
    ngx_stream_dtls_zone_node_t  *node;

    zone = ctx->conf->zone;

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_stream_dtls_zone_node(ctx);

    if (node == NULL) {
        rc = NGX_DONE;

    } else if (ngx_stream_dtls_record_seen(&node->read, seq)) {
        rc = NGX_DECLINED;

    } else {
        ngx_stream_dtls_record_received(&node->read, seq);

        ctx->read.top = node->read.top;
        ctx->read.window = node->read.window;

        node->last = ngx_time();

        ngx_queue_remove(&node->queue);
        ngx_queue_insert_head(&zone->sh->queue, &node->queue);

        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


/* the next write sequence number of the session, into ctx->write */

ngx_int_t
ngx_stream_dtls_zone_seq(ngx_stream_dtls_conn_t *ctx)
{
    ngx_int_t                     rc;
    ngx_stream_dtls_zone_t       *zone;
    ngx_stream_dtls_zone_node_t  *node;

    zone = ctx->conf->zone;

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_stream_dtls_zone_node(ctx);

    if (node == NULL) {
        rc = NGX_DONE;

    } else {
        ctx->write.seq = node->write.seq++;
        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


/* the DTLS session ends: close_notify, a fatal alert */

void
ngx_stream_dtls_zone_remove(ngx_stream_dtls_conn_t *ctx)
{
    ngx_stream_dtls_zone_t       *zone;
    ngx_stream_dtls_zone_node_t  *node;

    zone = ctx->conf->zone;

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_stream_dtls_zone_node(ctx);

    if (node) {
        ngx_stream_dtls_zone_delete(zone, node);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ctx->node = NULL;
}


/*
 * A handshake done at the session's address with a suite the zone cannot
 * keep: the session the zone had there is over all the same (RFC 6347
 * 4.2.8), as zone_add() replaces it
 */

void
ngx_stream_dtls_zone_forget(ngx_stream_dtls_conn_t *ctx)
{
    uint32_t                      hash;
    ngx_connection_t             *c;
    ngx_stream_dtls_zone_t       *zone;
    ngx_stream_dtls_zone_node_t  *node;

    c = ctx->connection;
    zone = ctx->conf->zone;
    hash = ngx_stream_dtls_zone_hash(c);

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_stream_dtls_zone_lookup(zone, c, hash);

    if (node) {
        ngx_stream_dtls_zone_delete(zone, node);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ctx->node = NULL;
}


/* a CID minted for a new session is no live one's */

ngx_uint_t
ngx_stream_dtls_zone_cid_used(ngx_stream_dtls_zone_t *zone, u_char *cid,
    size_t len)
{
    ngx_uint_t  used;

    ngx_shmtx_lock(&zone->shpool->mutex);

    used = (ngx_stream_dtls_zone_cid_lookup(zone, cid, len) != NULL);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return used;
}


/*
 * A datagram p[0 .. len - 1] whose first record carries a CID of cid_len
 * bytes: NGX_OK if it authenticates with that session's keys and is
 * newer than every record the session received, changing nothing
 */

ngx_int_t
ngx_stream_dtls_zone_cid_newest(ngx_stream_dtls_zone_t *zone, u_char *p,
    size_t len, size_t cid_len)
{
    uint64_t                      id, seq;
    ngx_int_t                     rc;
    ngx_stream_dtls_record_t      rd;
    ngx_stream_dtls_zone_node_t  *node;

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_stream_dtls_zone_cid_lookup(zone, p + 11, cid_len);

    if (node == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_DECLINED;
    }

    rd = node->read;
    id = node->id;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    rc = ngx_stream_dtls_move_record(&rd, zone, p, len, &seq);

    ngx_stream_dtls_record_wipe(&rd);

    if (rc != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_stream_dtls_zone_cid_lookup(zone, p + 11, cid_len);

    if (node == NULL || node->id != id || seq <= node->read.top) {
        rc = NGX_DECLINED;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (rc != NGX_OK) {
        ngx_stream_dtls_zone_dropped(zone, NGX_STREAM_DTLS_RECORD_REPLAY);
    }

    return rc;
}


/*
 * The session's CID record seq, from the new address of ctx's connection,
 * authenticated and not yet received: the entry takes the addresses if
 * the record is newer than every record received in the session
 */

ngx_int_t
ngx_stream_dtls_zone_move(ngx_stream_dtls_conn_t *ctx, uint64_t seq)
{
    uint32_t                      hash;
    ngx_int_t                     rc;
    ngx_connection_t             *c;
    ngx_stream_dtls_zone_t       *zone;
    ngx_stream_dtls_zone_node_t  *node, *old;

    c = ctx->connection;
    zone = ctx->conf->zone;

    if (c->socklen > sizeof(node->sockaddr)
        || c->local_socklen > sizeof(node->local_sockaddr))
    {
        return NGX_DECLINED;
    }

    hash = ngx_stream_dtls_zone_hash(c);

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_stream_dtls_zone_node(ctx);

    if (node == NULL || seq <= node->read.top) {
        rc = NGX_DECLINED;

    } else {
        old = ngx_stream_dtls_zone_lookup(zone, c, hash);

        /* another session of the new addresses gives way, as in add */

        if (old && old != node) {
            ngx_stream_dtls_zone_delete(zone, old);
        }

        ngx_rbtree_delete(&zone->sh->rbtree, &node->node);

        node->node.key = hash;
        node->socklen = c->socklen;
        ngx_memcpy(node->sockaddr, c->sockaddr, c->socklen);
        node->local_socklen = c->local_socklen;
        ngx_memcpy(node->local_sockaddr, c->local_sockaddr,
                   c->local_socklen);

        ngx_rbtree_insert(&zone->sh->rbtree, &node->node);

        zone->sh->moved++;
        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (rc == NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "DTLS session moved to a new address by its "
                      "connection ID");

    } else {
        ngx_stream_dtls_zone_dropped(zone, NGX_STREAM_DTLS_RECORD_REPLAY);
    }

    return rc;
}


/* a record of a session of the zone dropped (record.c's reason) */

void
ngx_stream_dtls_zone_dropped(ngx_stream_dtls_zone_t *zone,
    ngx_stream_dtls_record_rc_e rc)
{
    ngx_uint_t  i;

    switch (rc) {

    case NGX_STREAM_DTLS_RECORD_BAD_TAG:
        i = NGX_STREAM_DTLS_ZONE_DROPPED_AUTH;
        break;

    case NGX_STREAM_DTLS_RECORD_REPLAY:
    case NGX_STREAM_DTLS_RECORD_OLD:
        i = NGX_STREAM_DTLS_ZONE_DROPPED_REPLAY;
        break;

    case NGX_STREAM_DTLS_RECORD_OLD_EPOCH:
    case NGX_STREAM_DTLS_RECORD_NEW_EPOCH:
        i = NGX_STREAM_DTLS_ZONE_DROPPED_EPOCH;
        break;

    default:
        i = NGX_STREAM_DTLS_ZONE_DROPPED_MALFORMED;
    }

    (void) ngx_atomic_fetch_add(&zone->sh->dropped[i], 1);
}


ngx_uint_t
ngx_stream_dtls_zone_counter(ngx_stream_dtls_zone_t *zone, ngx_uint_t which)
{
    switch (which) {

    case 0:
        return zone->sh->sessions;

    case 1:
        return zone->sh->evictions;

    case 2:
        return zone->sh->continued;

    case 3 + NGX_STREAM_DTLS_ZONE_DROPPED:
        return zone->sh->moved;

    default:
        return zone->sh->dropped[(which - 3) % NGX_STREAM_DTLS_ZONE_DROPPED];
    }
}


/* the master's exit: no key stays in the zone's memory */

void
ngx_stream_dtls_zone_wipe(ngx_cycle_t *cycle)
{
    ngx_uint_t                    i;
    ngx_queue_t                  *q;
    ngx_list_part_t              *part;
    ngx_shm_zone_t               *shm_zone;
    ngx_stream_dtls_zone_t       *zone;
    ngx_stream_dtls_zone_node_t  *node;

    part = &cycle->shared_memory.part;
    shm_zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            shm_zone = part->elts;
            i = 0;
        }

        if (shm_zone[i].tag != &ngx_stream_dtls_module
            || shm_zone[i].data == NULL)
        {
            continue;
        }

        zone = shm_zone[i].data;

        if (zone->sh == NULL) {
            continue;
        }

        for (q = ngx_queue_head(&zone->sh->queue);
             q != ngx_queue_sentinel(&zone->sh->queue);
             q = ngx_queue_next(q))
        {
            node = ngx_queue_data(q, ngx_stream_dtls_zone_node_t, queue);

            ngx_stream_dtls_record_wipe(&node->read);
            ngx_stream_dtls_record_wipe(&node->write);
        }
    }
}


/*
 * A session is that of a client's address and port and the server's: as
 * nginx tells UDP sessions apart on a wildcard listen, and one server's
 * listens on several ports share the zone
 */

static uint32_t
ngx_stream_dtls_zone_hash(ngx_connection_t *c)
{
    uint32_t  hash;

    ngx_crc32_init(hash);
    ngx_crc32_update(&hash, (u_char *) c->sockaddr, c->socklen);
    ngx_crc32_update(&hash, (u_char *) c->local_sockaddr, c->local_socklen);
    ngx_crc32_final(hash);

    return hash;
}


/* under the lock */

static ngx_stream_dtls_zone_node_t *
ngx_stream_dtls_zone_lookup(ngx_stream_dtls_zone_t *zone, ngx_connection_t *c,
    uint32_t hash)
{
    ngx_rbtree_node_t            *n, *sentinel;
    ngx_stream_dtls_zone_node_t  *node;

    n = zone->sh->rbtree.root;
    sentinel = zone->sh->rbtree.sentinel;

    while (n != sentinel) {

        if (hash < n->key) {
            n = n->left;
            continue;
        }

        if (hash > n->key) {
            n = n->right;
            continue;
        }

        node = (ngx_stream_dtls_zone_node_t *) n;

        if (ngx_cmp_sockaddr(c->sockaddr, c->socklen,
                             (struct sockaddr *) node->sockaddr,
                             node->socklen, 1)
            == NGX_OK
            && ngx_cmp_sockaddr(c->local_sockaddr, c->local_socklen,
                                (struct sockaddr *) node->local_sockaddr,
                                node->local_socklen, 1)
               == NGX_OK)
        {
            if (ngx_time() - node->last > zone->timeout) {
                ngx_stream_dtls_zone_delete(zone, node);
                return NULL;
            }

            return node;
        }

        /* equal keys: ngx_rbtree_insert_value() puts them on the right */

        n = n->right;
    }

    return NULL;
}


/* the index entry of a CID (under the lock) */

static ngx_stream_dtls_zone_cid_t *
ngx_stream_dtls_zone_cid_find(ngx_stream_dtls_zone_t *zone, u_char *cid,
    size_t len)
{
    uint32_t                      hash;
    ngx_rbtree_node_t            *n, *sentinel;
    ngx_stream_dtls_zone_cid_t   *idx;

    hash = ngx_crc32_short(cid, len);

    n = zone->sh->cids.root;
    sentinel = zone->sh->cids.sentinel;

    while (n != sentinel) {

        if (hash < n->key) {
            n = n->left;
            continue;
        }

        if (hash > n->key) {
            n = n->right;
            continue;
        }

        idx = (ngx_stream_dtls_zone_cid_t *) n;

        if (idx->entry->read.cid_len == len
            && ngx_memcmp(idx->entry->read.cid, cid, len) == 0)
        {
            return idx;
        }

        n = n->right;
    }

    return NULL;
}


/* the session of a CID (under the lock) */

static ngx_stream_dtls_zone_node_t *
ngx_stream_dtls_zone_cid_lookup(ngx_stream_dtls_zone_t *zone, u_char *cid,
    size_t len)
{
    ngx_stream_dtls_zone_cid_t   *idx;
    ngx_stream_dtls_zone_node_t  *node;

    idx = ngx_stream_dtls_zone_cid_find(zone, cid, len);

    if (idx == NULL) {
        return NULL;
    }

    node = idx->entry;

    if (ngx_time() - node->last > zone->timeout) {
        ngx_stream_dtls_zone_delete(zone, node);
        return NULL;
    }

    return node;
}


/* the session's entry, if it is still there (under the lock) */

static ngx_stream_dtls_zone_node_t *
ngx_stream_dtls_zone_node(ngx_stream_dtls_conn_t *ctx)
{
    ngx_stream_dtls_zone_node_t  *node;

    node = ctx->node;

    /*
     * an entry freed and its memory reused is told by its id, which a
     * zone never gives twice
     */

    if (node == NULL || node->id != ctx->node_id) {
        return NULL;
    }

    return node;
}


static void
ngx_stream_dtls_zone_delete(ngx_stream_dtls_zone_t *zone,
    ngx_stream_dtls_zone_node_t *node)
{
    ngx_stream_dtls_zone_cid_t  *cid;

    ngx_rbtree_delete(&zone->sh->rbtree, &node->node);
    ngx_queue_remove(&node->queue);

    if (node->read.cid_len) {
        cid = ngx_stream_dtls_zone_cid_find(zone, node->read.cid,
                                            node->read.cid_len);
        if (cid && cid->entry == node) {
            ngx_rbtree_delete(&zone->sh->cids, &cid->node);
            ngx_slab_free_locked(zone->shpool, cid);
        }
    }

    ngx_explicit_memzero(node, offsetof(ngx_stream_dtls_zone_node_t, vars)
                               + node->vars_len);

    ngx_slab_free_locked(zone->shpool, node);

    zone->sh->sessions--;
}


/* up to n sessions idle past the timeout, the least recent first */

static void
ngx_stream_dtls_zone_expire(ngx_stream_dtls_zone_t *zone, ngx_uint_t n)
{
    time_t                        now;
    ngx_queue_t                  *q;
    ngx_stream_dtls_zone_node_t  *node;

    now = ngx_time();

    while (n--) {

        if (ngx_queue_empty(&zone->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&zone->sh->queue);
        node = ngx_queue_data(q, ngx_stream_dtls_zone_node_t, queue);

        if (now - node->last <= zone->timeout) {
            return;
        }

        ngx_stream_dtls_zone_delete(zone, node);
    }
}
