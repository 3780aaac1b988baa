/*
 * test_publisher: the pure half of src/kafka/publisher.h, without a broker.
 * One table of SSE events (name, data) and the messages each one must make
 * on a 3-partition topic, written one per line as
 *
 *     EVENT PARTITION KEY VALUE [| REASON]
 *
 * (partition -1: by key; value ~ for a tombstone; a dead letter's key is the
 * stream name). Then the headers, the generation rule and oversized events.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/publisher.h"
#include "t.h"

#define PARTS 3

/* Every message of the plan as text, as publisher.c walks them: items_ok
 * counts the reset items that went out as records. */
static void render(const struct publisher_plan *p, char *out, size_t outsz)
{
    struct publisher_msg m;
    size_t n = publisher_plan_count(p, PARTS), ok = 0, len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        T_ASSERTF(publisher_plan_msg(p, PARTS, i, ok, &m) == 0, "message %zu of %zu", i, n);
        T_ASSERT(m.nhdrs == (m.dead ? 6u : 5u));
        T_EQ_STR(m.hdrs[0].name, "event");
        len += (size_t)snprintf(out + len, outsz - len, "%s%.*s %d %.*s %.*s", i ? "\n" : "",
                                (int)m.hdrs[0].value_len, m.hdrs[0].value, (int)m.partition,
                                (int)m.klen, m.key, m.val ? (int)m.vlen : 1, m.val ? m.val : "~");
        if (m.dead)
            len += (size_t)snprintf(out + len, outsz - len, " | %.*s", (int)m.hdrs[5].value_len,
                                    m.hdrs[5].value);
        T_ASSERT(len < outsz);
        ok += (size_t)m.item;
    }
    T_ASSERT(publisher_plan_msg(p, PARTS, n, ok, &m) == -1);
}

/* The three markers of a reset of generation 1000 with `count` records. */
#define MARKER(part, count)                                                                        \
    "reset-end " part " mbta-stream:reset-end:vehicles "                                           \
    "{\"stream\":\"vehicles\",\"generation\":1000,\"count\":" count "}"
#define MARKERS(count) MARKER("0", count) "\n" MARKER("1", count) "\n" MARKER("2", count)

static const struct {
    const char *name, *event, *data;
    enum publisher_kind kind;
    const char *msgs;
} cases[] = {
    {"reset_split", "reset",
     "[{\"type\":\"vehicle\",\"id\":\"y1\"} , \n{\"id\":\"y2\",\"type\":\"vehicle\",\"a\":[1]}]",
     PUBLISHER_RESET,
     "reset -1 vehicle:y1 {\"type\":\"vehicle\",\"id\":\"y1\"}\n"
     "reset -1 vehicle:y2 {\"id\":\"y2\",\"type\":\"vehicle\",\"a\":[1]}\n" MARKERS("2")},
    {"reset_empty", "reset", " [ ] ", PUBLISHER_RESET, MARKERS("0")},
    {"reset_non_objects", "reset", "[1,{\"type\":\"stop\",\"id\":\"s\"},\"x\",{\"type\":\"v\"}]",
     PUBLISHER_RESET,
     "reset -1 vehicles 1 | reset item 0: offset 0: expected an object\n"
     "reset -1 stop:s {\"type\":\"stop\",\"id\":\"s\"}\n"
     "reset -1 vehicles \"x\" | reset item 2: offset 0: expected an object\n"
     "reset -1 vehicles {\"type\":\"v\"} | reset item 3: no \"id\"\n" MARKERS("1")},
    {"reset_malformed", "reset", "[{\"type\":\"v\",\"id\":\"1\"},", PUBLISHER_BAD,
     "reset -1 vehicles [{\"type\":\"v\",\"id\":\"1\"}, | offset 23: unexpected end of input"},
    {"reset_not_array", "reset", "{\"type\":\"v\",\"id\":\"1\"}", PUBLISHER_BAD,
     "reset -1 vehicles {\"type\":\"v\",\"id\":\"1\"} | offset 0: expected an array"},
    {"add", "add", " {\"type\":\"vehicle\",\"id\":\"y1\",\"attributes\":{\"x\":1}}\n",
     PUBLISHER_ADD,
     "add -1 vehicle:y1  {\"type\":\"vehicle\",\"id\":\"y1\",\"attributes\":{\"x\":1}}\n"},
    {"update", "update", "{\"id\":\"p-1\",\"type\":\"prediction\"}", PUBLISHER_UPDATE,
     "update -1 prediction:p-1 {\"id\":\"p-1\",\"type\":\"prediction\"}"},
    {"remove", "remove", "{\"id\":\"y1\",\"type\":\"vehicle\"}", PUBLISHER_REMOVE,
     "remove -1 vehicle:y1 ~"},
    {"malformed_json", "update", "{\"type\":\"vehicle\",", PUBLISHER_BAD,
     "update -1 vehicles {\"type\":\"vehicle\", | offset 18: expected a member name"},
    {"not_object", "add", "[1]", PUBLISHER_BAD,
     "add -1 vehicles [1] | offset 0: expected an object"},
    {"missing_type", "add", "{\"id\":\"y1\"}", PUBLISHER_BAD,
     "add -1 vehicles {\"id\":\"y1\"} | no \"type\""},
    {"missing_id", "remove", "{\"type\":\"vehicle\"}", PUBLISHER_BAD,
     "remove -1 vehicles {\"type\":\"vehicle\"} | no \"id\""},
    {"id_not_string", "add", "{\"type\":\"vehicle\",\"id\":5}", PUBLISHER_BAD,
     "add -1 vehicles {\"type\":\"vehicle\",\"id\":5} | \"id\" is not a string"},
    {"empty_id", "add", "{\"type\":\"vehicle\",\"id\":\"\"}", PUBLISHER_BAD,
     "add -1 vehicles {\"type\":\"vehicle\",\"id\":\"\"} | empty \"id\""},
    {"empty_data", "add", "", PUBLISHER_BAD, "add -1 vehicles  | offset 0: expected an object"},
    {"key_escapes", "add", "{\"typ\\u0065\":\"vehicle\",\"id\":\"a\\u0062\\\"c\\/\"}",
     PUBLISHER_ADD,
     "add -1 vehicle:ab\"c/ {\"typ\\u0065\":\"vehicle\",\"id\":\"a\\u0062\\\"c\\/\"}"},
    {"key_escapes_reset", "reset", "[{\"type\":\"t\\u00e9\",\"id\":\"\\n\"}]", PUBLISHER_RESET,
     "reset -1 t\xc3\xa9:\n {\"type\":\"t\\u00e9\",\"id\":\"\\n\"}\n" MARKERS("1")},
    {"unknown_name", "ping", "{\"type\":\"vehicle\",\"id\":\"y1\"}", PUBLISHER_IGNORED, ""},
    {"error_name", "error", "{}", PUBLISHER_IGNORED, ""},
    {"name_prefix", "reset-end", "[]", PUBLISHER_IGNORED, ""},
    {"name_case", "Add", "{\"type\":\"v\",\"id\":\"1\"}", PUBLISHER_IGNORED, ""},
};

static void test_table(void)
{
    struct jscan_span *scratch = NULL;
    size_t cap = 0;
    static char got[8192];
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct publisher_plan p;
        int64_t gen = 0;
        enum publisher_kind k = publisher_kind_parse(cases[c].event, strlen(cases[c].event));
        enum publisher_kind r = publisher_plan_init(
            &p, k, "vehicles", cases[c].data, strlen(cases[c].data), 1000, 7, &gen, &scratch, &cap);
        T_ASSERTF(r == cases[c].kind, "%s: kind %s, expected %s", cases[c].name,
                  publisher_kind_name(r), publisher_kind_name(cases[c].kind));
        T_ASSERTF(gen == (r == PUBLISHER_RESET ? 1000 : 0), "%s: generation %" PRId64,
                  cases[c].name, gen);
        render(&p, got, sizeof(got));
        T_ASSERTF(!strcmp(got, cases[c].msgs), "%s:\n--- got\n%s\n--- expected\n%s", cases[c].name,
                  got, cases[c].msgs);
    }
    free(scratch);
}

static void test_headers(void)
{
    struct publisher_plan p;
    struct publisher_msg m;
    int64_t gen = 1700000000000000000;
    const char *d = "{\"type\":\"vehicle\",\"id\":\"y1\"}";
    T_EQ_INT(publisher_plan_init(&p, PUBLISHER_UPDATE, "vehicles", d, strlen(d),
                                 1700000000123456789, 42, &gen, NULL, NULL),
             PUBLISHER_UPDATE);
    T_EQ_INT(publisher_plan_count(&p, PARTS), 1);
    T_EQ_INT(publisher_plan_msg(&p, PARTS, 0, 0, &m), 0);
    T_EQ_INT(m.nhdrs, 5);
    static const char *const want[][2] = {{"event", "update"},
                                          {"stream", "vehicles"},
                                          {"generation", "1700000000000000000"},
                                          {"received-at", "1700000000123456789"},
                                          {"seq", "42"}};
    for (size_t i = 0; i < 5; i++) {
        T_EQ_STR(m.hdrs[i].name, want[i][0]);
        T_EQ_MEM(m.hdrs[i].value, m.hdrs[i].value_len, want[i][1], strlen(want[i][1]));
    }
    T_ASSERT(m.val == d && m.vlen == strlen(d)); /* the bytes as received, not a copy */
    T_EQ_INT(m.item, 0);
    T_EQ_INT(m.dead, 0);
}

/* A reset advances the generation to its received-at, or by one when the
 * clock went back; anything else (a bad reset too) leaves it. */
static void test_generation(void)
{
    struct publisher_plan p;
    struct publisher_msg m;
    struct jscan_span *sp = NULL;
    size_t cap = 0;
    int64_t gen = 5000;
    T_EQ_INT(publisher_plan_init(&p, PUBLISHER_RESET, "s", "[]", 2, 9000, 1, &gen, &sp, &cap),
             PUBLISHER_RESET);
    T_EQ_INT(gen, 9000);
    T_EQ_INT(publisher_plan_init(&p, PUBLISHER_RESET, "s", "[]", 2, 8000, 2, &gen, &sp, &cap),
             PUBLISHER_RESET);
    T_EQ_INT(gen, 9001);
    T_EQ_INT(p.generation, 9001);
    T_EQ_INT(publisher_plan_msg(&p, 1, 0, 0, &m), 0);
    T_EQ_MEM(m.hdrs[2].value, m.hdrs[2].value_len, "9001", 4);
    T_EQ_INT(publisher_plan_init(&p, PUBLISHER_RESET, "s", "[", 1, 10000, 3, &gen, &sp, &cap),
             PUBLISHER_BAD);
    T_EQ_INT(gen, 9001);
    T_EQ_INT(publisher_plan_msg(&p, 1, 0, 0, &m), 0);
    T_EQ_MEM(m.hdrs[2].value, m.hdrs[2].value_len, "9001", 4);
    T_EQ_INT(publisher_plan_init(&p, PUBLISHER_ADD, "s", "{}", 2, 20000, 4, &gen, &sp, &cap),
             PUBLISHER_BAD);
    T_EQ_INT(gen, 9001);
    /* A topic with one partition: one marker. */
    T_EQ_INT(publisher_plan_init(&p, PUBLISHER_RESET, "s", "[]", 2, 30000, 5, &gen, &sp, &cap),
             PUBLISHER_RESET);
    T_EQ_INT(publisher_plan_count(&p, 1), 1);
    free(sp);
}

static void test_key_too_long(void)
{
    static char d[PUBLISHER_KEY_MAX + 64];
    struct publisher_plan p;
    int64_t gen = 0;
    /* "v:" + id: the longest id that fits leaves room for the NUL. */
    size_t fit = PUBLISHER_KEY_MAX - 3;
    for (int pass = 0; pass < 2; pass++) {
        size_t idlen = fit + (size_t)pass, n = 0;
        n += (size_t)snprintf(d, sizeof(d), "{\"type\":\"v\",\"id\":\"");
        memset(d + n, 'x', idlen);
        n += idlen;
        n += (size_t)snprintf(d + n, sizeof(d) - n, "\"}");
        enum publisher_kind k =
            publisher_plan_init(&p, PUBLISHER_ADD, "s", d, n, 1, 1, &gen, NULL, NULL);
        if (!pass) {
            T_EQ_INT(k, PUBLISHER_ADD);
            T_EQ_INT(p.klen, 2 + fit);
        } else {
            T_EQ_INT(k, PUBLISHER_BAD);
            T_EQ_STR(p.reason, "key too long");
        }
    }
}

static void test_skipped(void)
{
    struct publisher_plan p;
    struct publisher_msg m;
    publisher_plan_skipped(&p, "alerts", "event larger than 1024 bytes", 77, 9, 55);
    T_EQ_INT(p.kind, PUBLISHER_BAD);
    T_EQ_INT(publisher_plan_count(&p, PARTS), 1);
    T_EQ_INT(publisher_plan_msg(&p, PARTS, 0, 0, &m), 0);
    T_EQ_INT(m.dead, 1);
    T_ASSERT(m.val != NULL); /* an empty value, not a tombstone */
    T_EQ_INT(m.vlen, 0);
    T_EQ_MEM(m.key, m.klen, "alerts", 6);
    T_EQ_MEM(m.hdrs[0].value, m.hdrs[0].value_len, "-", 1);
    T_EQ_MEM(m.hdrs[2].value, m.hdrs[2].value_len, "55", 2);
    T_EQ_MEM(m.hdrs[4].value, m.hdrs[4].value_len, "9", 1);
    T_EQ_STR(m.hdrs[5].name, "reason");
    T_EQ_MEM(m.hdrs[5].value, m.hdrs[5].value_len, "event larger than 1024 bytes", 28);
}

static void test_kind_names(void)
{
    T_EQ_INT(publisher_kind_parse("reset", 5), PUBLISHER_RESET);
    T_EQ_INT(publisher_kind_parse("add", 3), PUBLISHER_ADD);
    T_EQ_INT(publisher_kind_parse("update", 6), PUBLISHER_UPDATE);
    T_EQ_INT(publisher_kind_parse("remove", 6), PUBLISHER_REMOVE);
    T_EQ_INT(publisher_kind_parse("resetx", 5), PUBLISHER_RESET); /* by length */
    T_EQ_INT(publisher_kind_parse("", 0), PUBLISHER_IGNORED);
    T_EQ_INT(publisher_kind_parse("bad", 3), PUBLISHER_IGNORED);
    T_EQ_STR(publisher_kind_name(PUBLISHER_REMOVE), "remove");
}

int main(void)
{
    T_RUN(test_table);
    T_RUN(test_headers);
    T_RUN(test_generation);
    T_RUN(test_key_too_long);
    T_RUN(test_skipped);
    T_RUN(test_kind_names);
    return T_DONE();
}
