/*
 * fuzz_resource: the MBTA resource transform is a parser of untrusted bytes
 * (whatever is in the topic): it must refuse or accept, never crash, leak
 * or read out of bounds; an accepted row must have a type, an id and
 * columns consistent with its descriptor. Also the key split and the
 * timestamp parser on the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mbta/resource.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct res_row row;
    char why[512];
    const char *t, *id;
    size_t tl, il;
    int64_t us;
    if (res_parse((const char *)data, size, NULL, NULL, &row, why, sizeof(why)) == 0) {
        if (!row.type || !row.id || !row.rtype || !*row.id)
            abort();
        for (size_t i = 0; i < row.type->ncols; i++)
            if (!row.v[i].null &&
                (row.type->cols[i].kind == RES_TEXT || row.type->cols[i].kind == RES_RELID ||
                 row.type->cols[i].kind == RES_JSON) &&
                !row.v[i].s)
                abort();
        res_row_fini(&row);
    } else if (!why[0]) {
        abort(); /* a refusal always says why */
    }
    (void)res_split_key((const char *)data, size, &t, &tl, &id, &il);
    why[0] = '\0';
    if (res_parse_ts((const char *)data, size, &us, why, sizeof(why)) != 0 && !why[0])
        abort(); /* so does a refused timestamp */
    return 0;
}
