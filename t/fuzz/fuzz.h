
/*
 * Copyright (C) ngx_dtls authors
 */


/* what every fuzz target shares: the libFuzzer entry points, an assert */


#ifndef _NGX_STREAM_DTLS_FUZZ_H_INCLUDED_
#define _NGX_STREAM_DTLS_FUZZ_H_INCLUDED_


#include <stdio.h>
#include <stdlib.h>


/* a property of the code under test, checked in every build */

#define fuzz_assert(expr)                                                     \
    if (!(expr)) {                                                            \
        fprintf(stderr, "%s:%d: property broken: %s\n",                       \
                __FILE__, __LINE__, #expr);                                   \
        abort();                                                              \
    }


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#endif /* _NGX_STREAM_DTLS_FUZZ_H_INCLUDED_ */
