/*
 * fuzz_publisher: the publisher's plan (event -> messages) on arbitrary
 * bytes, first byte picking the event kind. Checks its invariants: every
 * record value and dead letter lies inside the input (bytes as received,
 * never a copy), a reset is its items then one marker per partition whose
 * count is the items that went out as records, every message has its
 * headers, and the generation only moves forward.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/publisher.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const char *p, size_t n, const char *b, size_t size)
{
    return p >= b && n <= size && (size_t)(p - b) <= size - n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    enum publisher_kind k = (enum publisher_kind)(data[0] % 6);
    const char *b = (const char *)data + 1;
    size_t n = size - 1;
    struct jscan_span *sp = NULL;
    size_t cap = 0, ok = 0;
    struct publisher_plan p;
    struct publisher_msg m;
    int64_t gen = 1000;
    enum publisher_kind r = publisher_plan_init(&p, k, "s", b, n, 500, 1, &gen, &sp, &cap);
    if (r != k && !(r == PUBLISHER_BAD && k <= PUBLISHER_REMOVE) &&
        !(r == PUBLISHER_IGNORED && k > PUBLISHER_REMOVE))
        abort();
    if (gen != (r == PUBLISHER_RESET ? 1001 : 1000))
        abort();
    const int parts = 3;
    size_t cnt = publisher_plan_count(&p, parts);
    for (size_t i = 0; i < cnt; i++) {
        if (publisher_plan_msg(&p, parts, i, ok, &m) != 0 || m.nhdrs != (m.dead ? 6u : 5u))
            abort();
        int marker = r == PUBLISHER_RESET && i >= p.nitems;
        if (marker != (m.partition >= 0) || (marker && m.partition != (int32_t)(i - p.nitems)))
            abort();
        if (!marker && m.val && m.vlen && !inside(m.val, m.vlen, b, n))
            abort();
        if (!m.dead && !marker && r != PUBLISHER_REMOVE && !m.val)
            abort();
        if (m.dead && !m.val)
            abort();
        if (!m.dead && !marker && (!m.klen || !memchr(m.key, ':', m.klen)))
            abort();
        ok += (size_t)m.item;
    }
    if (publisher_plan_msg(&p, parts, cnt, ok, &m) != -1 || ok > p.nitems)
        abort();
    free(sp);
    return 0;
}
