
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * A session with a connection ID moved in its own nginx session.
 *
 * A tls12_cid record from an address nginx has no UDP session for starts
 * a new nginx session.  When a live nginx session of this worker holds
 * the DTLS session of its CID, the datagram and its address are handed
 * to that one (its read event posted), and the new nginx session is
 * closed at once, unlogged, as a dropped datagram's is.  The live one
 * opens the records with its own keys: if one authenticates and is newer
 * than every record received in the session (RFC 9146 6; the zone's
 * window, under its lock, has the last word), nginx's UDP session is
 * re-keyed to the new address, the datagram is read as the session's
 * own, and replies go there from the same upstream socket.  Anything
 * else moves nothing and is dropped.
 *
 * The sessions of this worker are found by CID in an index of their
 * own: the zone's is shared, and holds no pointer into a process.  A
 * record whose session no nginx session of this worker holds (another
 * worker's, one from before a reload) is continued from the zone
 * (zone.c), with a new upstream socket.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


/*
 * A NAT gives a session's address to another device only once the
 * session's client has been silent for the binding's lifetime: 2 minutes
 * at least (RFC 4787 REQ-5), 30 seconds in the shortest seen.  A session
 * that heard from its client since holds its address: another session's
 * record from there, authentic as it may be, is dropped.
 */

#define NGX_STREAM_DTLS_MOVE_SILENT  30000


struct ngx_stream_dtls_move_s {
    size_t                      len;
    socklen_t                   socklen;
    ngx_sockaddr_t              sockaddr;
    u_char                      data[1];
};


/*
 * The head of nginx's private struct ngx_udp_connection_s: the node in
 * the listening socket's tree, then the connection.  Checked against
 * nginx 1.22.1 and 1.26.3 (src/event/ngx_event_udp.c, .h); 1.25 added a
 * "key" after them that points at c->sockaddr, which a move changes in
 * place before the node enters the tree again (1.26's insert function
 * compares the keys' bytes).
 */

typedef struct {
    ngx_rbtree_node_t           node;
    ngx_connection_t           *connection;
} ngx_stream_dtls_udp_t;


static ngx_stream_dtls_conn_t *ngx_stream_dtls_move_find(
    ngx_stream_dtls_srv_conf_t *dscf, u_char *cid);
static ngx_int_t ngx_stream_dtls_move_rekey(ngx_connection_t *c,
    struct sockaddr *sockaddr, socklen_t socklen);
static ngx_connection_t *ngx_stream_dtls_move_lookup(ngx_listening_t *ls,
    uint32_t hash, struct sockaddr *sockaddr, socklen_t socklen,
    ngx_connection_t *c);
static void ngx_stream_dtls_move_unindex(ngx_stream_dtls_conn_t *ctx);


/* this worker's sessions with a CID, by a hash of it */

static ngx_rbtree_t       ngx_stream_dtls_move_tree;
static ngx_rbtree_node_t  ngx_stream_dtls_move_sentinel;

/* a record opened in a copy: a CID record is opened in place */

static u_char  ngx_stream_dtls_move_copy[65536];


/* the session enters the index, or again with a renewal's new CID */

void
ngx_stream_dtls_move_index(ngx_stream_dtls_conn_t *ctx)
{
    ngx_stream_dtls_move_unindex(ctx);

    if (ctx->read.cid_len == 0) {
        return;
    }

    if (ngx_stream_dtls_move_tree.root == NULL) {
        ngx_rbtree_init(&ngx_stream_dtls_move_tree,
                        &ngx_stream_dtls_move_sentinel,
                        ngx_rbtree_insert_value);
    }

    ctx->cid_node.key = ngx_crc32_short(ctx->read.cid, ctx->read.cid_len);

    ngx_rbtree_insert(&ngx_stream_dtls_move_tree, &ctx->cid_node);

    ctx->indexed = 1;
}


/*
 * A datagram p[0 .. len - 1] from c's address, which no nginx session of
 * the worker has (c's is new, or has just left it), a tls12_cid record
 * perhaps: NGX_OK, a live session of this worker takes it; NGX_DECLINED,
 * none does.
 */

ngx_int_t
ngx_stream_dtls_move_handoff(ngx_connection_t *c,
    ngx_stream_dtls_srv_conf_t *dscf, u_char *p, size_t len)
{
    ngx_connection_t        *lc;
    ngx_stream_dtls_move_t  *m;
    ngx_stream_dtls_conn_t  *ctx;

    if (dscf->cid_length == 0
        || len < NGX_STREAM_DTLS_RECORD_HEADER_LEN + dscf->cid_length
        || p[0] != NGX_STREAM_DTLS_RECORD_CID)
    {
        return NGX_DECLINED;
    }

    ctx = ngx_stream_dtls_move_find(dscf, p + 11);

    if (ctx == NULL) {
        return NGX_DECLINED;
    }

    lc = ctx->connection;

    /* re-keyed within its listening socket, for the same local address */

    if (lc->listening != c->listening
        || lc->udp == NULL
        || lc->socklen != c->socklen
        || ngx_cmp_sockaddr(lc->local_sockaddr, lc->local_socklen,
                            c->local_sockaddr, c->local_socklen, 1)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    m = ngx_alloc(offsetof(ngx_stream_dtls_move_t, data) + len, c->log);
    if (m == NULL) {
        return NGX_ERROR;
    }

    m->len = len;
    m->socklen = c->socklen;
    ngx_memcpy(&m->sockaddr, c->sockaddr, c->socklen);
    ngx_memcpy(m->data, p, len);

    /* one not yet read is lost, as on the wire */

    if (ctx->move) {
        ngx_free(ctx->move);
    }

    ctx->move = m;

    lc->read->ready = 1;
    ngx_post_event(lc->read, &ngx_posted_events);

    ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "dtls record with a connection ID handed to *%uA",
                   lc->number);

    return NGX_OK;
}


/*
 * The datagram handed to the session, read before any other: NGX_OK,
 * the session has moved to its address and buf[0 .. *len - 1] holds it;
 * NGX_DECLINED, it is dropped and nothing moved.
 */

ngx_int_t
ngx_stream_dtls_move_take(ngx_connection_t *c, ngx_stream_dtls_conn_t *ctx,
    u_char *buf, size_t size, size_t *len)
{
    uint64_t                 seq;
    ngx_int_t                rc;
    socklen_t                socklen;
    ngx_sockaddr_t           old;
    ngx_stream_dtls_move_t  *m;

    m = ctx->move;
    ctx->move = NULL;

    rc = NGX_DECLINED;

    if (m->len > size || ctx->closed) {
        goto done;
    }

    if (ngx_stream_dtls_move_record(&ctx->read,
                                    ctx->node ? ctx->conf->zone : NULL,
                                    m->data, m->len, &seq)
        != NGX_OK)
    {
        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls record with the connection ID from a new "
                       "address dropped: not authenticated");
        goto done;
    }

    if (seq <= ctx->read.top) {
        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls record with the connection ID from a new "
                       "address dropped: not the newest");

        if (ctx->node) {
            ngx_stream_dtls_zone_dropped(ctx->conf->zone,
                                         NGX_STREAM_DTLS_RECORD_REPLAY);
        }

        goto done;
    }

    socklen = c->socklen;
    ngx_memcpy(&old, c->sockaddr, socklen);

    if (ngx_stream_dtls_move_rekey(c, &m->sockaddr.sockaddr, m->socklen)
        != NGX_OK)
    {
        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls record with the connection ID dropped: "
                       "another nginx session has its address");
        goto done;
    }

    /* the zone's entry moves too, if nothing newer came meanwhile */

    if (ctx->node && ngx_stream_dtls_zone_move(ctx, seq) != NGX_OK) {
        (void) ngx_stream_dtls_move_rekey(c, &old.sockaddr, socklen);
        goto done;
    }

    if (ctx->node == NULL) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "DTLS session moved to a new address by its "
                      "connection ID");
    }

    if (ctx->conf->proxy_protocol
        && ngx_stream_dtls_proxy_protocol(ctx) == NGX_ERROR)
    {
        rc = NGX_ERROR;
        goto done;
    }

    ngx_memcpy(buf, m->data, m->len);
    *len = m->len;

    rc = NGX_OK;

done:

    ngx_explicit_memzero(m->data, m->len);
    ngx_free(m);

    return rc;
}


/*
 * A datagram from the session's own address with another session's CID:
 * a NAT has given the address to another device, or someone sends as if
 * it had.  NGX_DECLINED: not such a datagram; NGX_OK: dropped; NGX_DONE:
 * this session's client has been silent long enough for its NAT to have
 * let the address go (a client that spoofs its source with a record of
 * its own thus cannot end a live session), and the datagram
 * authenticates with the other session's keys of the zone and is the
 * newest of that session, so this nginx session leaves the address to
 * it (the DTLS session stays in the zone, for its client's next address)
 * and ends, and the datagram goes to the other session's live nginx
 * session in the worker, if there is one (lost otherwise: the next one
 * from there continues that session from the zone).
 */

ngx_int_t
ngx_stream_dtls_move_foreign(ngx_connection_t *c, ngx_stream_dtls_conn_t *ctx,
    u_char *p, size_t len)
{
    size_t  cid_len;

    /*
     * the session may have no CID: the server's are all of one length;
     * a new handshake beside it has a new CID of its own
     */

    cid_len = ctx->conf->cid_length;

    if (cid_len == 0
        || ctx->ssl
        || ctx->renewal
        || len < NGX_STREAM_DTLS_RECORD_HEADER_LEN + cid_len
        || p[0] != NGX_STREAM_DTLS_RECORD_CID
        || (ctx->read.cid_len
            && ngx_memcmp(p + 11, ctx->read.cid, cid_len) == 0))
    {
        return NGX_DECLINED;
    }

    if (ngx_current_msec - ctx->heard < NGX_STREAM_DTLS_MOVE_SILENT) {
        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls record with another session's connection ID "
                       "dropped: this session's client is not silent");
        return NGX_OK;
    }

    if (ngx_stream_dtls_zone_cid_newest(ctx->conf->zone, p, len, cid_len)
        != NGX_OK)
    {
        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls record with another session's connection ID "
                       "dropped");
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "DTLS session's address taken by another session's "
                  "connection ID, its nginx session ends");

    /* nothing goes to the address any more: no close_notify either */

    ngx_delete_udp_connection(c);

    ctx->closed = 1;
    ngx_stream_dtls_close(c, ctx);

    (void) ngx_stream_dtls_move_handoff(c, ctx->conf, p, len);

    return NGX_DONE;
}


/*
 * The first record of p[0 .. len - 1] that authenticates with the keys
 * of "read", opened in a copy, changing nothing: its sequence number.
 * The records are read as the session's once the move is done.  Those
 * that fail are counted in the zone, if one is given.
 */

ngx_int_t
ngx_stream_dtls_move_record(ngx_stream_dtls_record_t *read,
    ngx_stream_dtls_zone_t *zone, u_char *p, size_t len, uint64_t *seq)
{
    u_char                       *copy;
    size_t                        rlen, n;
    ngx_uint_t                    type;
    ngx_stream_dtls_record_t      rd;
    ngx_stream_dtls_record_rc_e   rc;

    copy = ngx_stream_dtls_move_copy;
    rd = *read;
    rc = NGX_STREAM_DTLS_RECORD_MALFORMED;

    while ((rlen = ngx_stream_dtls_record_cid_length(p, len, rd.cid_len))
           != 0)
    {
        ngx_memcpy(copy, p, rlen);

        rc = ngx_stream_dtls_record_open(&rd, copy, rlen, copy, &n, &type);

        ngx_explicit_memzero(copy, rlen);

        if (rc == NGX_STREAM_DTLS_RECORD_OK) {
            *seq = ngx_stream_dtls_record_seq(p);
            break;
        }

        p += rlen;
        len -= rlen;
    }

    ngx_stream_dtls_record_wipe(&rd);

    if (rc == NGX_STREAM_DTLS_RECORD_OK) {
        return NGX_OK;
    }

    if (zone) {
        ngx_stream_dtls_zone_dropped(zone, rc);
    }

    return NGX_DECLINED;
}


void
ngx_stream_dtls_move_free(ngx_stream_dtls_conn_t *ctx)
{
    ngx_stream_dtls_move_unindex(ctx);

    if (ctx->move) {
        ngx_explicit_memzero(ctx->move->data, ctx->move->len);
        ngx_free(ctx->move);
        ctx->move = NULL;
    }
}


/* a live session of the server whose CID a record carries */

static ngx_stream_dtls_conn_t *
ngx_stream_dtls_move_find(ngx_stream_dtls_srv_conf_t *dscf, u_char *cid)
{
    size_t                   len;
    uint32_t                 hash;
    ngx_rbtree_node_t       *n, *sentinel;
    ngx_stream_dtls_conn_t  *ctx;

    if (ngx_stream_dtls_move_tree.root == NULL) {
        return NULL;
    }

    len = dscf->cid_length;
    hash = ngx_crc32_short(cid, len);

    n = ngx_stream_dtls_move_tree.root;
    sentinel = ngx_stream_dtls_move_tree.sentinel;

    while (n != sentinel) {

        if (hash < n->key) {
            n = n->left;
            continue;
        }

        if (hash > n->key) {
            n = n->right;
            continue;
        }

        ctx = (ngx_stream_dtls_conn_t *)
                  ((u_char *) n - offsetof(ngx_stream_dtls_conn_t, cid_node));

        if (ctx->conf == dscf
            && !ctx->closed
            && ctx->read.cid_len == len
            && ngx_memcmp(ctx->read.cid, cid, len) == 0)
        {
            return ctx;
        }

        /* equal keys: ngx_rbtree_insert_value() puts them on the right */

        n = n->right;
    }

    return NULL;
}


/*
 * nginx's UDP session c takes a new client address: its node leaves the
 * listening socket's tree and enters it again with the key that
 * ngx_insert_udp_connection() would compute, and the address text of
 * $remote_addr and the log changes with it
 */

static ngx_int_t
ngx_stream_dtls_move_rekey(ngx_connection_t *c, struct sockaddr *sockaddr,
    socklen_t socklen)
{
    uint32_t            hash;
    ngx_listening_t    *ls;
    ngx_rbtree_node_t  *node;

    ls = c->listening;

    if (c->udp == NULL || socklen != c->socklen) {
        return NGX_DECLINED;
    }

    ngx_crc32_init(hash);
    ngx_crc32_update(&hash, (u_char *) sockaddr, socklen);

    if (ls->wildcard) {
        ngx_crc32_update(&hash, (u_char *) c->local_sockaddr,
                         c->local_socklen);
    }

    ngx_crc32_final(hash);

    /*
     * the new nginx session of the address was closed before, but a
     * datagram from there since may have made another
     */

    if (ngx_stream_dtls_move_lookup(ls, hash, sockaddr, socklen, c)) {
        return NGX_DECLINED;
    }

    node = (ngx_rbtree_node_t *) c->udp;

    ngx_rbtree_delete(&ls->rbtree, node);

    ngx_memcpy(c->sockaddr, sockaddr, socklen);
    node->key = hash;

    ngx_rbtree_insert(&ls->rbtree, node);

    if (c->addr_text.data) {
        c->addr_text.len = ngx_sock_ntop(c->sockaddr, c->socklen,
                                         c->addr_text.data,
                                         ls->addr_text_max_len, 0);
    }

    return NGX_OK;
}


/* as ngx_lookup_udp_connection(), static in nginx, finds one */

static ngx_connection_t *
ngx_stream_dtls_move_lookup(ngx_listening_t *ls, uint32_t hash,
    struct sockaddr *sockaddr, socklen_t socklen, ngx_connection_t *c)
{
    ngx_int_t               rc;
    ngx_connection_t       *uc;
    ngx_rbtree_node_t      *node, *sentinel;
    ngx_stream_dtls_udp_t  *udp;

    node = ls->rbtree.root;
    sentinel = ls->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        udp = (ngx_stream_dtls_udp_t *) node;
        uc = udp->connection;

        rc = ngx_cmp_sockaddr(sockaddr, socklen, uc->sockaddr, uc->socklen,
                              1);

        if (rc == 0 && ls->wildcard) {
            rc = ngx_cmp_sockaddr(c->local_sockaddr, c->local_socklen,
                                  uc->local_sockaddr, uc->local_socklen, 1);
        }

        if (rc == 0) {
            return uc;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_stream_dtls_move_unindex(ngx_stream_dtls_conn_t *ctx)
{
    if (ctx->indexed) {
        ngx_rbtree_delete(&ngx_stream_dtls_move_tree, &ctx->cid_node);
        ctx->indexed = 0;
    }
}
