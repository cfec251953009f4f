
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * Datagrams in memory between two SSL objects of one process (dtls_floor,
 * dtls_record_diff): a queue a direction, libc memory, one BIO write one
 * datagram, one BIO read one datagram.  Beside dtls.h.
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


#endif /* _NGX_DTLS_TOOLS_DGRAM_H_INCLUDED_ */
