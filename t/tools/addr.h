/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * ADDR:PORT as the test tools take it: 127.0.0.1:5684 or [::1]:5684,
 * and a host address alone (dtls_load -b).  Included by each tool, which
 * is built from its one .c file.
 */


#ifndef _NGX_DTLS_TOOLS_ADDR_H_INCLUDED_
#define _NGX_DTLS_TOOLS_ADDR_H_INCLUDED_


#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>


/* a host address of hlen bytes (no brackets) and a port, 0 to 65535 */

static int
parse_host(const char *s, size_t hlen, long port, struct sockaddr_storage *ss,
    socklen_t *len)
{
    char                  host[128];
    struct sockaddr_in   *sin;
    struct sockaddr_in6  *sin6;

    memset(ss, 0, sizeof(*ss));

    if (hlen >= sizeof(host) || port < 0 || port > 65535) {
        return -1;
    }

    memcpy(host, s, hlen);
    host[hlen] = '\0';

    sin = (struct sockaddr_in *) ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t) port);
        *len = sizeof(struct sockaddr_in);
        return 0;
    }

    sin6 = (struct sockaddr_in6 *) ss;
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t) port);
        *len = sizeof(struct sockaddr_in6);
        return 0;
    }

    return -1;
}


static int
parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    long         port;
    char        *end;
    size_t       hlen;
    const char  *colon, *rb;

    if (s[0] == '[') {
        rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':') {
            return -1;
        }
        hlen = rb - s - 1;
        s++;
        colon = rb + 1;

    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            return -1;
        }
        hlen = colon - s;
    }

    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port == 0) {
        return -1;
    }

    return parse_host(s, hlen, port, ss, len);
}


#endif /* _NGX_DTLS_TOOLS_ADDR_H_INCLUDED_ */
