/*
 * fuzz_jscan: the JSON scanner on arbitrary bytes. Checks its invariants:
 * every split element and found member lies inside the input, each element
 * is itself valid JSON, and validate agrees with split/lookup on arrays and
 * objects, and jscan_members agrees with jscan_object on valid objects.
 * Differential: the fast scanner and the reference (jscan_*_scalar) give
 * the same return value, kind, message, spans and members on every input,
 * and stage 1's portable classifier agrees with the SSE2 one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json/jscan_int.h"

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

    /* Fast against reference, at the fuzzing depth and at a shallow one. */
    for (int d = 0; d < 2; d++) {
        int md = d ? 3 : 64;
        char e1[128], e2[128];
        if (jscan_validate(b, size, md, e1, sizeof(e1)) !=
                jscan_validate_scalar(b, size, md, e2, sizeof(e2)) ||
            strcmp(e1, e2) != 0)
            abort();
        struct jscan_span *s1 = NULL, *s2 = NULL;
        size_t c1 = 0, c2 = 0, n1 = 0, n2 = 0;
        int r1 = jscan_array(b, size, md, 0, &s1, &c1, &n1, NULL, 0);
        int r2 = jscan_array_scalar(b, size, md, 0, &s2, &c2, &n2, NULL, 0);
        if (r1 != r2 || (r1 == 0 && (n1 != n2 || (n1 && memcmp(s1, s2, n1 * sizeof(*s1))))))
            abort();
        free(s1);
        free(s2);
        struct jscan_str o1[2], o2[2];
        r1 = jscan_object(b, size, md, keys, 2, o1, NULL, 0);
        r2 = jscan_object_scalar(b, size, md, keys, 2, o2, NULL, 0);
        if (r1 != r2)
            abort();
        for (int k = 0; r1 == 0 && k < 2; k++)
            if (o1[k].found != o2[k].found || o1[k].kind != o2[k].kind ||
                o1[k].escaped != o2[k].escaped || o1[k].raw.off != o2[k].raw.off ||
                o1[k].raw.len != o2[k].raw.len)
                abort();
    }
    /* Stage 1's classifier: the portable one agrees with the built one
     * (SSE2) on every whole block of the input. */
    for (size_t off = 0; size - off >= 64 && off < size; off += 64) {
        uint64_t q1, q2;
        int o1 = jscan_classify(data + off, &q1) != 0;
        int o2 = jscan_classify_portable(data + off, &q2) != 0;
        if (q1 != q2 || o1 != o2)
            abort();
    }
    return 0;
}
