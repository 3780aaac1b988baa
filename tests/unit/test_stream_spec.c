/*
 * test_stream_spec: produce's --stream NAME=/PATH?QUERY[@TOPIC] parsing, one
 * table of specs against a base URL: the name, path, topic and URL, or the
 * error line.
 */
#include <string.h>

#include "cmd/stream_spec.h"
#include "t.h"

static const struct {
    const char *spec, *base;
    const char *name, *path, *topic, *url; /* name NULL: an error containing `path` */
} cases[] = {
    {"vehicles=/vehicles?filter[route_type]=0,1", "https://api-v3.mbta.com", "vehicles",
     "/vehicles?filter[route_type]=0,1", "mbta.vehicles",
     "https://api-v3.mbta.com/vehicles?filter[route_type]=0,1"},
    {"v=/vehicles@my.topic_1-x", "http://127.0.0.1:8080///", "v", "/vehicles", "my.topic_1-x",
     "http://127.0.0.1:8080/vehicles"},
    /* the last @ names the topic: an @ in the query stays in the path */
    {"a=/alerts?filter[x]=a@b@t", "http://h", "a", "/alerts?filter[x]=a@b", "t",
     "http://h/alerts?filter[x]=a@b"},
    {"A.b_c-9=/p", "", "A.b_c-9", "/p", "mbta.A.b_c-9", "/p"},
    {"=/vehicles", "http://h", NULL, "expected NAME=/PATH?QUERY[@TOPIC]", NULL, NULL},
    {"vehicles", "http://h", NULL, "expected NAME=", NULL, NULL},
    {"veh icles=/v", "http://h", NULL, "NAME of [A-Za-z0-9._-]", NULL, NULL},
    {"v=vehicles", "http://h", NULL, "the path must start with /", NULL, NULL},
    {"v=", "http://h", NULL, "the path must start with /", NULL, NULL},
    {"v=@t", "http://h", NULL, "the path must start with /", NULL, NULL},
    {"v=/vehicles@", "http://h", NULL, "bad topic name", NULL, NULL},
    {"v=/vehicles@a/b", "http://h", NULL, "bad topic name", NULL, NULL},
    {"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxx=/v",
     "http://h", NULL, "expected NAME=", NULL, NULL},
};

static void test_table(void)
{
    char err[512];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct stream_spec s;
        err[0] = '\0';
        int r = stream_spec_parse(cases[i].spec, cases[i].base, &s, err, sizeof(err));
        if (!cases[i].name) {
            T_ASSERTF(r == -1, "%s: accepted", cases[i].spec);
            T_ASSERTF(strstr(err, cases[i].path) && strstr(err, "--stream "), "%s: error \"%s\"",
                      cases[i].spec, err);
            T_ASSERT(!s.name && !s.path && !s.topic && !s.url);
            continue;
        }
        T_ASSERTF(r == 0, "%s: %s", cases[i].spec, err);
        T_EQ_STR(s.name, cases[i].name);
        T_EQ_STR(s.path, cases[i].path);
        T_EQ_STR(s.topic, cases[i].topic);
        T_EQ_STR(s.url, cases[i].url);
        stream_spec_fini(&s);
        T_ASSERT(!s.name);
        stream_spec_fini(&s); /* twice: a no-op */
    }
}

int main(void)
{
    T_RUN(test_table);
    return T_DONE();
}
