
/*
 * Copyright (C) ngx_dtls authors
 */


#ifndef _NGX_STREAM_DTLS_H_INCLUDED_
#define _NGX_STREAM_DTLS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/sha.h>

#include "ngx_stream_dtls_record.h"


#define NGX_STREAM_DTLS_COOKIE_LEN        32
#define NGX_STREAM_DTLS_SECRET_LEN        32

#define NGX_STREAM_DTLS_PSK_MIN_LEN       16
#define NGX_STREAM_DTLS_PSK_MAX_LEN       64
#define NGX_STREAM_DTLS_IDENTITY_MAX_LEN  128

/* the PROXY protocol TLV of the PSK identity, in the custom range */

#define NGX_STREAM_DTLS_PP2_TYPE_PSK_IDENTITY  0xE4

#define NGX_STREAM_DTLS_DTLSv1            0x0002
#define NGX_STREAM_DTLS_DTLSv1_2          0x0004

/* a handshake message a client claims is reassembled up to this size */

#define NGX_STREAM_DTLS_MAX_HANDSHAKE_MESSAGE  16384

#define ngx_stream_dtls_read_uint16(p)                                        \
    (((ngx_uint_t) (p)[0] << 8) | (p)[1])
#define ngx_stream_dtls_read_uint24(p)                                        \
    (((ngx_uint_t) (p)[0] << 16) | ((ngx_uint_t) (p)[1] << 8) | (p)[2])

/*
 * dtls_connection_id's default: 48 random bits, as Californium mints
 * them; unique in the zone, and 7 bytes per record with the inner type
 */

#define NGX_STREAM_DTLS_CID_DEFAULT_LEN  6

#define NGX_STREAM_DTLS_VERIFY_OFF             0
#define NGX_STREAM_DTLS_VERIFY_ON              1
#define NGX_STREAM_DTLS_VERIFY_OPTIONAL        2
#define NGX_STREAM_DTLS_VERIFY_OPTIONAL_NO_CA  3


typedef struct {
    ngx_str_t                   identity;
    size_t                      key_len;
    u_char                      key[NGX_STREAM_DTLS_PSK_MAX_LEN];
    ngx_uint_t                  line;
} ngx_stream_dtls_psk_t;


/*
 * The keys are allocated once, at their final number, and sorted through
 * pointers: no copy of a key is made, nor left behind, but in keys[],
 * which the configuration's pool cleanup wipes.
 */

typedef struct ngx_stream_dtls_psk_db_s  ngx_stream_dtls_psk_db_t;

typedef struct {
    ngx_stream_dtls_psk_db_t   *db;         /* "cdb:": keys in a database */
    ngx_stream_dtls_psk_t      *keys;       /* in the file's order */
    ngx_stream_dtls_psk_t     **sorted;     /* by identity, for the lookup */
    ngx_uint_t                  nkeys;
    ngx_str_t                   file;
} ngx_stream_dtls_psk_store_t;


typedef struct ngx_stream_dtls_zone_s       ngx_stream_dtls_zone_t;
typedef struct ngx_stream_dtls_zone_node_s  ngx_stream_dtls_zone_node_t;


/* the stateless cookie: per-epoch keys derived from one base secret */

typedef struct {
    u_char                      base[NGX_STREAM_DTLS_SECRET_LEN];
    time_t                      lifetime;
    time_t                      epoch;      /* of key[0], per worker */
    u_char                      key[2][NGX_STREAM_DTLS_SECRET_LEN];
} ngx_stream_dtls_cookie_secret_t;


/* a session ticket key, as nginx's ssl_session_ticket_key reads it */

typedef struct {
    size_t                      size;       /* 48 or 80 */
    u_char                      name[16];
    u_char                      hmac_key[32];
    u_char                      aes_key[32];
} ngx_stream_dtls_ticket_key_t;


typedef struct {
    ngx_flag_t                  bpf;        /* dtls_bpf */
    u_char                     *bpf_file;
    ngx_uint_t                  bpf_line;
    ngx_array_t                *groups;     /* bpf.c: the listens steered */
} ngx_stream_dtls_main_conf_t;


typedef struct {
    ngx_flag_t                  enable;

    ngx_ssl_t                   ssl;        /* a DTLS SSL_CTX */

    ngx_uint_t                  protocols;
    ngx_str_t                   ciphers;
    ngx_str_t                   psk_identity_hint;
    ngx_msec_t                  handshake_timeout;
    ngx_uint_t                  handshake_limit;
    ngx_msec_t                  proxy_timeout;  /* the proxy's, or 0 */
    size_t                      mtu;
    ngx_flag_t                  proxy_protocol;
    ngx_stream_dtls_zone_t     *zone;       /* dtls_session_zone */
    size_t                      cid_length; /* dtls_connection_id, or 0 */
    u_char                     *cid_file;
    ngx_uint_t                  cid_line;

    /* this worker's, for this server */
    ngx_uint_t                  handshakes;         /* in progress */
    ngx_uint_t                  handshakes_dropped; /* over the limit */

    ngx_stream_dtls_psk_store_t      *psk;
    ngx_stream_dtls_cookie_secret_t  *cookie;
    ngx_flag_t                  cookie_exchange;
    time_t                      cookie_lifetime;
    u_char                     *cookie_base;    /* dtls_cookie_secret */

    ngx_flag_t                  session_tickets;
    ngx_array_t                *ticket_keys;    /* of key pointers */

    ngx_array_t                *certificates;
    ngx_array_t                *certificate_keys;
    ngx_array_t                *passwords;

    ngx_uint_t                  verify;
    ngx_uint_t                  verify_depth;
    ngx_str_t                   client_certificate;
    ngx_str_t                   trusted_certificate;
    ngx_str_t                   crl;

    /* where "dtls on" was set, for errors found after parsing */
    u_char                     *file;
    ngx_uint_t                  line;
} ngx_stream_dtls_srv_conf_t;


/* per session */

typedef struct ngx_stream_dtls_renewal_s  ngx_stream_dtls_renewal_t;
typedef struct ngx_stream_dtls_move_s     ngx_stream_dtls_move_t;

typedef struct {
    SSL                        *ssl;
    ngx_connection_t           *connection;
    ngx_stream_dtls_srv_conf_t *conf;

    /* nginx's own UDP session I/O, beneath the DTLS records */
    ngx_recv_pt                 recv;
    ngx_send_chain_pt           send_chain;

    ngx_buf_t                  *first;      /* ClientHello not yet read */
    u_char                     *hold;       /* of a datagram being written */
    size_t                      held;
    ngx_msec_t                  deadline;   /* of the handshake */
    ngx_msec_t                  active;     /* the last record, either way */
    ngx_msec_t                  heard;      /* the client's, authenticated */
    size_t                      data_mtu;   /* a record's data at most */
    size_t                      record_min; /* a protected record's least */

    u_char                      cookie[NGX_STREAM_DTLS_COOKIE_LEN];

    const char                 *failure;    /* why the handshake failed */

    ngx_stream_dtls_renewal_t  *renewal;    /* the client's new handshake */

    u_char                     *pp;         /* PROXY protocol header */
    size_t                      pp_len;     /* 0: none */
    size_t                      pp_size;

    ngx_uint_t                  hello_seq;  /* of the ClientHello */

    /*
     * Once established with an AEAD suite the SSL object is freed and
     * the session's records are the module's own (session.c)
     */

    ngx_stream_dtls_record_t    read;
    ngx_stream_dtls_record_t    write;

    ngx_str_t                  *vars;       /* $dtls_*, one block */
    u_char                      random[SSL3_RANDOM_SIZE];   /* client's */
    u_char                      peer[SHA256_DIGEST_LENGTH]; /* who it is */

    /* the records OpenSSL wrote: where the module's sequence goes on */
    uint64_t                    written;    /* the next sequence number */
    ngx_uint_t                  written_epoch;

    /*
     * The server's last flight, resent while the client retransmits its
     * own (RFC 6347, 4.2.4): datagrams, each after its 2-byte length
     */

    u_char                     *flight;
    size_t                      flight_len;
    size_t                      flight_size;

    /*
     * During a handshake the last datagram OpenSSL read; once the
     * session is established the records of a datagram not yet read
     */

    u_char                     *in;
    size_t                      in_pos;
    size_t                      in_len;
    size_t                      in_size;

    /*
     * Connection IDs (cid.c): the server's, the client's (of peer_cid_len
     * bytes, perhaps none), the client's tls12_cid records of a
     * handshake's datagram that OpenSSL reads next
     */

    u_char                      cid[NGX_STREAM_DTLS_CID_MAX_LEN];
    u_char                      peer_cid[NGX_STREAM_DTLS_CID_MAX_LEN];
    u_char                      cid_ext[1 + NGX_STREAM_DTLS_CID_MAX_LEN];
    u_char                      cid_len;    /* 0: not negotiated */
    u_char                      peer_cid_len;
    u_char                     *pending;
    size_t                      pending_len;

    /*
     * move.c: the session in this worker's index of CIDs, and a record
     * from a new address that may move it there
     */

    ngx_rbtree_node_t           cid_node;
    ngx_stream_dtls_move_t     *move;

    /* the session's entry in dtls_session_zone, told by its id */
    ngx_stream_dtls_zone_node_t  *node;
    uint64_t                    node_id;

    unsigned                    handshaked:1;
    unsigned                    hello_seen:1;
    unsigned                    early:2;    /* epoch-1 records before CCS */
    unsigned                    counted:1;  /* holds a handshake slot */
    unsigned                    closed:1;   /* no more records out */
    unsigned                    keep_flight:1;  /* in SSL_do_handshake() */
    unsigned                    draining:1; /* the handshake's last datagram */
    unsigned                    continued:1;    /* from the zone */
    unsigned                    ending:1;   /* the client's close_notify */
    unsigned                    cid_offered:1;
    unsigned                    indexed:1;  /* cid_node in the index */
} ngx_stream_dtls_conn_t;


/* hello.c: the stateless first-datagram check */

typedef enum {
    NGX_STREAM_DTLS_HELLO_OK = 0,           /* ClientHello, valid cookie */
    NGX_STREAM_DTLS_HELLO_VERIFY,           /* no cookie: HVR sent */
    NGX_STREAM_DTLS_HELLO_BAD_COOKIE,       /* stale or forged: HVR sent */
    NGX_STREAM_DTLS_HELLO_STRAY,            /* record of an ended session */
    NGX_STREAM_DTLS_HELLO_INVALID           /* not a ClientHello: dropped */
} ngx_stream_dtls_hello_e;

ngx_stream_dtls_cookie_secret_t *ngx_stream_dtls_cookie_secret(
    ngx_conf_t *cf, time_t lifetime, u_char *base);
char *ngx_stream_dtls_cookie_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_stream_dtls_cookie_wipe(void);
ngx_stream_dtls_hello_e ngx_stream_dtls_hello(ngx_connection_t *c,
    ngx_send_chain_pt send_chain, ngx_stream_dtls_cookie_secret_t *secret,
    ngx_buf_t *b, u_char *cookie);
int ngx_stream_dtls_verify_cookie_cb(SSL *ssl, const unsigned char *cookie,
    unsigned int len);
int ngx_stream_dtls_generate_cookie_cb(SSL *ssl, unsigned char *cookie,
    unsigned int *len);


/* handshake.c */

ngx_stream_dtls_conn_t *ngx_stream_dtls_conn_create(ngx_stream_session_t *s,
    ngx_stream_dtls_srv_conf_t *dscf);
ngx_int_t ngx_stream_dtls_init_session(ngx_stream_session_t *s,
    ngx_stream_dtls_srv_conf_t *dscf, u_char *cookie);
ngx_int_t ngx_stream_dtls_ssl_create(ngx_stream_dtls_conn_t *ctx);
ngx_int_t ngx_stream_dtls_handshake(ngx_stream_session_t *s);
int ngx_stream_dtls_ssl_handshake(ngx_stream_dtls_conn_t *ctx);
ngx_msec_t ngx_stream_dtls_handshake_timer(ngx_stream_dtls_conn_t *ctx);
ngx_int_t ngx_stream_dtls_handshake_timeout(ngx_stream_dtls_conn_t *ctx,
    const char **reason);
void ngx_stream_dtls_handshake_failed(ngx_connection_t *c,
    ngx_stream_dtls_conn_t *ctx, const char *reason);
void ngx_stream_dtls_ssl_error(ngx_connection_t *c, int sslerr, char *text);
void ngx_stream_dtls_info_callback(const SSL *ssl, int where, int ret);
void ngx_stream_dtls_send_alert(ngx_stream_dtls_conn_t *ctx, u_char alert);


/* input.c: what a handshake in progress may read */

ssize_t ngx_stream_dtls_handshake_input(ngx_stream_dtls_conn_t *ctx,
    u_char *buf, size_t size);
size_t ngx_stream_dtls_session_input(ngx_stream_dtls_conn_t *ctx,
    u_char *buf, size_t size);


/* bio.c */

ngx_int_t ngx_stream_dtls_bio_init(ngx_conf_t *cf);
void ngx_stream_dtls_bio_exit(void);
BIO *ngx_stream_dtls_bio_new(ngx_stream_dtls_conn_t *ctx);
void ngx_stream_dtls_bio_cleanup(ngx_stream_dtls_conn_t *ctx);
ngx_stream_dtls_conn_t *ngx_stream_dtls_ssl_conn(const SSL *ssl);
ssize_t ngx_stream_dtls_send_datagram(ngx_connection_t *c,
    ngx_send_chain_pt send_chain, u_char *data, size_t len);


/* cid.c: connection IDs (RFC 9146) */

char *ngx_stream_dtls_connection_id(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_stream_dtls_cid_init(ngx_conf_t *cf,
    ngx_stream_dtls_srv_conf_t *dscf);
void ngx_stream_dtls_cid_set(ngx_stream_dtls_conn_t *ctx,
    ngx_stream_dtls_conn_t *hs);
ngx_int_t ngx_stream_dtls_cid_output(ngx_stream_dtls_conn_t *ctx, u_char *p,
    size_t len, u_char **out, size_t *out_len);
ssize_t ngx_stream_dtls_cid_input(ngx_stream_dtls_conn_t *ctx, u_char *buf,
    size_t n);


/* bpf.c: CID records steered to their worker (Linux) */

#if (NGX_HAVE_DTLS_BPF)
ngx_int_t ngx_stream_dtls_bpf_check(ngx_cycle_t *cycle);
ngx_int_t ngx_stream_dtls_bpf_init(ngx_cycle_t *cycle);
#endif

/* move.c: a session with a CID moved in its own nginx session */

void ngx_stream_dtls_move_index(ngx_stream_dtls_conn_t *ctx);
ngx_int_t ngx_stream_dtls_move_handoff(ngx_connection_t *c,
    ngx_stream_dtls_srv_conf_t *dscf, u_char *p, size_t len);
ngx_int_t ngx_stream_dtls_move_take(ngx_connection_t *c,
    ngx_stream_dtls_conn_t *ctx, u_char *buf, size_t size, size_t *len);
ngx_int_t ngx_stream_dtls_move_foreign(ngx_connection_t *c,
    ngx_stream_dtls_conn_t *ctx, u_char *p, size_t len);
ngx_int_t ngx_stream_dtls_move_record(ngx_stream_dtls_record_t *read,
    ngx_stream_dtls_zone_t *zone, u_char *p, size_t len, uint64_t *seq);
void ngx_stream_dtls_move_free(ngx_stream_dtls_conn_t *ctx);


/* io.c: the session's I/O once the handshake is done */

void ngx_stream_dtls_set_io(ngx_connection_t *c,
    ngx_stream_dtls_conn_t *ctx);
void ngx_stream_dtls_record_sizes(ngx_stream_dtls_conn_t *ctx);
size_t ngx_stream_dtls_record_min(ngx_stream_dtls_conn_t *ctx);
ssize_t ngx_stream_dtls_recv(ngx_connection_t *c, u_char *buf, size_t size);
ssize_t ngx_stream_dtls_send(ngx_connection_t *c, u_char *buf, size_t size);
ngx_chain_t *ngx_stream_dtls_send_chain(ngx_connection_t *c, ngx_chain_t *in,
    off_t limit);
ssize_t ngx_stream_dtls_idle(ngx_connection_t *c, ngx_stream_dtls_conn_t *ctx);
void ngx_stream_dtls_close(ngx_connection_t *c, ngx_stream_dtls_conn_t *ctx);
void ngx_stream_dtls_shutdown(ngx_stream_dtls_conn_t *ctx);


/* session.c: an established session, and its own records */

ngx_int_t ngx_stream_dtls_establish(ngx_stream_dtls_conn_t *ctx,
    ngx_stream_dtls_conn_t *hs);
ngx_int_t ngx_stream_dtls_peer_digest(SSL *ssl, u_char *md);
ssize_t ngx_stream_dtls_session_recv(ngx_connection_t *c,
    ngx_stream_dtls_conn_t *ctx, u_char *buf, size_t size);
ngx_int_t ngx_stream_dtls_next_datagram(ngx_connection_t *c,
    ngx_stream_dtls_conn_t *ctx, u_char **p, size_t *len);
ssize_t ngx_stream_dtls_session_records(ngx_connection_t *c,
    ngx_stream_dtls_conn_t *ctx, u_char *p, size_t len, u_char *buf,
    size_t size, size_t *used);
ngx_int_t ngx_stream_dtls_session_keep(ngx_stream_dtls_conn_t *ctx,
    u_char *p, size_t len);
ssize_t ngx_stream_dtls_session_send(ngx_connection_t *c,
    ngx_stream_dtls_conn_t *ctx, u_char *buf, size_t size);
void ngx_stream_dtls_session_alert(ngx_stream_dtls_conn_t *ctx,
    ngx_uint_t level, ngx_uint_t desc);
void ngx_stream_dtls_session_free(ngx_stream_dtls_conn_t *ctx);


/* zone.c: dtls_session_zone, sessions in shared memory */

#define NGX_STREAM_DTLS_ZONE_DROPPED_AUTH       0   /* failed its tag */
#define NGX_STREAM_DTLS_ZONE_DROPPED_REPLAY     1   /* or left of window */
#define NGX_STREAM_DTLS_ZONE_DROPPED_EPOCH      2   /* of another epoch */
#define NGX_STREAM_DTLS_ZONE_DROPPED_MALFORMED  3   /* or too long */
#define NGX_STREAM_DTLS_ZONE_DROPPED            4

char *ngx_stream_dtls_session_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_stream_dtls_zone_add(ngx_stream_dtls_conn_t *ctx);
ngx_int_t ngx_stream_dtls_zone_continue(ngx_stream_session_t *s,
    ngx_stream_dtls_srv_conf_t *dscf);
ngx_int_t ngx_stream_dtls_zone_received(ngx_stream_dtls_conn_t *ctx,
    uint64_t seq);
ngx_int_t ngx_stream_dtls_zone_seq(ngx_stream_dtls_conn_t *ctx);
void ngx_stream_dtls_zone_remove(ngx_stream_dtls_conn_t *ctx);
void ngx_stream_dtls_zone_forget(ngx_stream_dtls_conn_t *ctx);
ngx_int_t ngx_stream_dtls_zone_move(ngx_stream_dtls_conn_t *ctx,
    uint64_t seq);
ngx_uint_t ngx_stream_dtls_zone_cid_used(ngx_stream_dtls_zone_t *zone,
    u_char *cid, size_t len);
ngx_int_t ngx_stream_dtls_zone_cid_newest(ngx_stream_dtls_zone_t *zone,
    u_char *p, size_t len, size_t cid_len);
void ngx_stream_dtls_zone_dropped(ngx_stream_dtls_zone_t *zone,
    ngx_stream_dtls_record_rc_e rc);
ngx_uint_t ngx_stream_dtls_zone_counter(ngx_stream_dtls_zone_t *zone,
    ngx_uint_t which);
void ngx_stream_dtls_zone_wipe(ngx_cycle_t *cycle);


/* renew.c: a new handshake of the client beside its live session */

ngx_int_t ngx_stream_dtls_renew(ngx_stream_dtls_conn_t *ctx, u_char *p,
    size_t len);
ngx_int_t ngx_stream_dtls_renew_finish(ngx_stream_dtls_conn_t *ctx);
void ngx_stream_dtls_renew_free(ngx_stream_dtls_conn_t *ctx);


/* proxy_protocol.c: the header that starts each datagram upstream */

ngx_int_t ngx_stream_dtls_proxy_protocol(ngx_stream_dtls_conn_t *ctx);
ngx_int_t ngx_stream_dtls_proxy_protocol_ssl(ngx_connection_t *c,
    ngx_pool_t *pool, ngx_str_t *s);


/* cert.c */

ngx_int_t ngx_stream_dtls_certificates(ngx_conf_t *cf,
    ngx_stream_dtls_srv_conf_t *dscf);
char *ngx_stream_dtls_password_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


/* secret.c */

ngx_int_t ngx_stream_dtls_read_secret(ngx_conf_t *cf, const char *what,
    ngx_str_t *name, ngx_str_t *text);
void ngx_stream_dtls_free_secret(ngx_str_t *text);


/* psk.c */

char *ngx_stream_dtls_psk_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
unsigned int ngx_stream_dtls_psk_server_cb(SSL *ssl, const char *identity,
    unsigned char *psk, unsigned int max_psk_len);
u_char *ngx_stream_dtls_psk_printable(u_char *dst, u_char *src, size_t len);
ngx_uint_t ngx_stream_dtls_psk_known(ngx_stream_dtls_psk_store_t *store,
    ngx_log_t *log, ngx_str_t *identity);


/* psk_db.c: the keys in a constant database (cdb), memory-mapped */

char *ngx_stream_dtls_psk_db_open(ngx_conf_t *cf, ngx_str_t *file,
    ngx_stream_dtls_psk_db_t **dbp);
size_t ngx_stream_dtls_psk_db_key(ngx_stream_dtls_psk_db_t *db,
    ngx_log_t *log, u_char *identity, size_t len, u_char *key, size_t size);


/* ticket.c: session ticket keys */

char *ngx_stream_dtls_ticket_key_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_stream_dtls_session_tickets(ngx_conf_t *cf,
    ngx_stream_dtls_srv_conf_t *dscf);
void ngx_stream_dtls_ticket_wipe(void);


/* source.c: datagrams from sources no client can have */

ngx_int_t ngx_stream_dtls_source_filters(ngx_cycle_t *cycle);
ngx_uint_t ngx_stream_dtls_source_valid(struct sockaddr *sa);


/*
 * variables.c; the places of some of a session's values: those the PROXY
 * protocol header is made of, and what only the header says of the
 * client's certificate
 */

#define NGX_STREAM_DTLS_VAR_PROTOCOL      0
#define NGX_STREAM_DTLS_VAR_CIPHER        1
#define NGX_STREAM_DTLS_VAR_PSK_IDENTITY  2
#define NGX_STREAM_DTLS_VAR_SERVER_NAME   5
#define NGX_STREAM_DTLS_VAR_PP2_SSL       12


ngx_int_t ngx_stream_dtls_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_stream_dtls_capture_variables(ngx_stream_dtls_conn_t *ctx);
size_t ngx_stream_dtls_pack_variables(ngx_stream_dtls_conn_t *ctx, u_char *buf,
    size_t size);
ngx_int_t ngx_stream_dtls_unpack_variables(ngx_stream_dtls_conn_t *ctx,
    u_char *p, size_t len);


ngx_stream_dtls_conn_t *ngx_stream_dtls_get_conn(ngx_connection_t *c);
ngx_stream_dtls_srv_conf_t *ngx_stream_dtls_listening_conf(
    ngx_listening_t *ls, ngx_uint_t i);


extern ngx_module_t  ngx_stream_dtls_module;


#endif /* _NGX_STREAM_DTLS_H_INCLUDED_ */
