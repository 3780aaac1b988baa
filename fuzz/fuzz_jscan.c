/*
 * fuzz_jscan: the JSON scanner on arbitrary bytes. Checks its invariants:
 * every split element and found member lies inside the input, each element
 * is itself valid JSON, and validate agrees with split/lookup on arrays and
 * objects, and jscan_members agrees with jscan_object on valid objects.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json/jscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *b = (const char *)data;
    int kind = jscan_validate(b, size, 64, NULL, 0);

    struct jscan_span *sp = NULL;
    size_t cap = 0, cnt = 0;
    int rc = jscan_array(b, size, 64, 0, &sp, &cap, &cnt, NULL, 0);
    if ((rc == 0) != (kind == JSCAN_ARRAY))
        abort();
    for (size_t i = 0; rc == 0 && i < cnt; i++) {
        if (sp[i].off > size || sp[i].len > size - sp[i].off)
            abort();
        if (jscan_validate(b + sp[i].off, sp[i].len, 63, NULL, 0) < 0)
            abort();
    }
    free(sp);

    static const char *const keys[] = {"type", "id"};
    struct jscan_str out[2];
    rc = jscan_object(b, size, 64, keys, 2, out, NULL, 0);
    if ((rc == 0) != (kind == JSCAN_OBJECT))
        abort();
    for (int k = 0; rc == 0 && k < 2; k++) {
        if (!out[k].found)
            continue;
        if (out[k].raw.off > size || out[k].raw.len > size - out[k].raw.off)
            abort();
        char dec[64];
        (void)jscan_unescape(b + out[k].raw.off, out[k].raw.len, dec, sizeof(dec));
    }
    /* The trusted lookup: memory-safe on anything, and equal to the
     * validating one on valid objects. */
    struct jscan_str tr[2];
    int trc = jscan_members(b, size, keys, 2, tr);
    if (rc == 0 && trc != 0)
        abort();
    for (int k = 0; rc == 0 && k < 2; k++)
        if (tr[k].found != out[k].found || tr[k].kind != out[k].kind ||
            tr[k].escaped != out[k].escaped || tr[k].raw.off != out[k].raw.off ||
            tr[k].raw.len != out[k].raw.len)
            abort();
    return 0;
}
