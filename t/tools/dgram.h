
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * Datagrams in memory between two SSL objects of one process (dtls_floor,
 * dtls_record_diff): a queue a direction, libc memory, one BIO write one
 * datagram, one BIO read one datagram; the BIO of a side.  Beside dtls.h.
 */


#ifndef _NGX_DTLS_TOOLS_DGRAM_H_INCLUDED_
#define _NGX_DTLS_TOOLS_DGRAM_H_INCLUDED_


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>


typedef struct dgram_s  dgram_t;

struct dgram_s {
    dgram_t                 *next;
    size_t                   len;
    unsigned char            data[];
};


typedef struct {
    dgram_t                 *head;
    dgram_t                 *tail;
} queue_t;


static void
queue_push(queue_t *q, const unsigned char *data, size_t len)
{
    dgram_t  *d;

    d = malloc(sizeof(dgram_t) + len);
    if (d == NULL) {
        perror("malloc");
        exit(1);
    }

    d->next = NULL;
    d->len = len;
    memcpy(d->data, data, len);

    if (q->tail) {
        q->tail->next = d;

    } else {
        q->head = d;
    }

    q->tail = d;
}


static dgram_t *
queue_pop(queue_t *q)
{
    dgram_t  *d;

    d = q->head;

    if (d != NULL) {
        q->head = d->next;

        if (q->head == NULL) {
            q->tail = NULL;
        }
    }

    return d;
}


static void
queue_clear(queue_t *q)
{
    dgram_t  *d;

    while ((d = queue_pop(q)) != NULL) {
        free(d);
    }
}


/* a BIO's read: the next datagram of the queue, or a retry */

static int
queue_read(BIO *b, queue_t *q, char *buf, int len)
{
    size_t    n;
    dgram_t  *d;

    BIO_clear_retry_flags(b);

    d = queue_pop(q);

    if (d == NULL) {
        BIO_set_retry_read(b);
        return -1;
    }

    n = (d->len < (size_t) len) ? d->len : (size_t) len;
    memcpy(buf, d->data, n);
    free(d);

    return (int) n;
}


static long
queue_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void) b;
    (void) num;
    (void) ptr;

    return (cmd == BIO_CTRL_FLUSH) ? 1 : 0;
}


/*
 * A side: the queue its BIO reads and the one it writes.  A tool's own
 * side may begin with it; "written", if set, sees each datagram the side
 * writes.
 */

typedef struct dgram_end_s  dgram_end_t;

struct dgram_end_s {
    queue_t                 *in;
    queue_t                 *out;
    void                   (*written)(dgram_end_t *end,
                                      const unsigned char *data, size_t len);
};


static BIO_METHOD  *dgram_method;


static int
dgram_bio_write(BIO *b, const char *buf, int len)
{
    size_t        n;
    dgram_end_t  *end;

    end = BIO_get_data(b);
    n = len > 0 ? (size_t) len : 0;

    BIO_clear_retry_flags(b);

    if (end->written) {
        end->written(end, (const unsigned char *) buf, n);
    }

    queue_push(end->out, (const unsigned char *) buf, n);

    return len;
}


static int
dgram_bio_read(BIO *b, char *buf, int len)
{
    dgram_end_t  *end;

    end = BIO_get_data(b);

    return queue_read(b, end->in, buf, len);
}


/* the BIO method, named for the tool: 0, or -1 */

static int
dgram_init(const char *name)
{
    dgram_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                name);

    if (dgram_method == NULL
        || BIO_meth_set_write(dgram_method, dgram_bio_write) != 1
        || BIO_meth_set_read(dgram_method, dgram_bio_read) != 1
        || BIO_meth_set_ctrl(dgram_method, queue_bio_ctrl) != 1)
    {
        return -1;
    }

    return 0;
}


static BIO *
dgram_bio_new(dgram_end_t *end)
{
    BIO  *b;

    b = BIO_new(dgram_method);
    if (b == NULL) {
        return NULL;
    }

    BIO_set_data(b, end);
    BIO_set_init(b, 1);

    return b;
}


#endif /* _NGX_DTLS_TOOLS_DGRAM_H_INCLUDED_ */
