/* Fuzz target: the recording reader must never crash or read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/recfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy so ASan sees any read past the end */
    char *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    memcpy(p, data, size);
    long start = recfile_check(p, size);
    size_t off = start < 0 ? 0 : (size_t)start;
    struct recfile_rec rec;
    char err[128];
    int r;
    size_t total = 0;
    while ((r = recfile_next(p, size, &off, &rec, err, sizeof(err))) == 1) {
        if (rec.kind == 'D' || rec.kind == 'X')
            for (size_t i = 0; i < rec.len; i++)
                total += (unsigned char)rec.data[i];
        if (off > size)
            abort();
    }
    (void)total;
    free(p);
    return 0;
}
