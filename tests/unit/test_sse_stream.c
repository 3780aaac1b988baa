/*
 * test_sse_stream: sse_client against an in-process HTTP server on
 * 127.0.0.1 (a thread with plain sockets; no outside server). What the
 * tail integration test cannot reach: backpressure (a paused stream stops
 * reading, the server's writes block, and on resume every event arrives in
 * order, none dropped) and several streams in one client, one paused while
 * the other flows.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sse/sse_stream.h"
#include "t.h"
#include "util/clock.h"

/* ---- the server: GET /N serves events 0..N-1 ("data: i\n\n", padded) ---- */

static int srv_fd;
static int srv_port;
static atomic_long srv_bytes; /* body bytes the server managed to write */

static void *srv_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char req[4096], line[256];
    size_t got = 0;
    while (got < sizeof(req) - 1) {
        ssize_t r = recv(fd, req + got, sizeof(req) - 1 - got, 0);
        if (r <= 0)
            goto out;
        got += (size_t)r;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    long n = strtol(req + 5, NULL, 10); /* "GET /N" */
    const char *hdr = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                      "Connection: close\r\n\r\n";
    if (send(fd, hdr, strlen(hdr), MSG_NOSIGNAL) < 0)
        goto out;
    for (long i = 0; i < n; i++) {
        int l = snprintf(line, sizeof(line),
                         "event: update\ndata: %ld "
                         "{\"type\":\"vehicle\",\"attributes\":{\"label\":\"padding\"}}\n\n",
                         i);
        if (send(fd, line, (size_t)l, MSG_NOSIGNAL) != l)
            goto out;
        atomic_fetch_add(&srv_bytes, l);
    }
out:
    close(fd);
    return NULL;
}

static void *srv_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(srv_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_t t;
        pthread_create(&t, NULL, srv_conn, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
}

static void srv_start(void)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    pthread_t t;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (srv_fd < 0 || bind(srv_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(srv_fd, 16) < 0 || getsockname(srv_fd, (struct sockaddr *)&a, &al) < 0) {
        perror("test server");
        exit(1);
    }
    srv_port = ntohs(a.sin_port);
    pthread_create(&t, NULL, srv_main, NULL);
    pthread_detach(t);
}

/* ---- a consumer that checks order ---- */

struct consumer {
    long next;     /* the event number expected next */
    long bad;      /* out-of-order or malformed events */
    long pause_at; /* pause the stream when this many events arrived (-1: never) */
    int connects, disconnects, stopped;
};

static void c_event(void *opaque, struct sse_stream *s, const struct sse_event *ev,
                    int64_t received_ns)
{
    struct consumer *c = opaque;
    (void)received_ns;
    if (strtol(ev->data, NULL, 10) != c->next || strcmp(ev->type, "update") != 0)
        c->bad++;
    c->next++;
    if (c->next == c->pause_at)
        sse_stream_pause(s, 1);
}

static void c_state(void *opaque, struct sse_stream *s, enum sse_state st, int status,
                    const char *msg)
{
    struct consumer *c = opaque;
    (void)s;
    (void)status;
    (void)msg;
    if (st == SSE_CONNECTED)
        c->connects++;
    else if (st == SSE_DISCONNECTED)
        c->disconnects++;
    else
        c->stopped++;
}

static struct sse_stream *add(struct sse_client *cl, long n, struct consumer *c)
{
    char url[128], err[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/%ld", srv_port, n);
    struct sse_stream_conf conf = {.name = url, .url = url, .idle_timeout_ms = 60000};
    struct sse_stream_cbs cbs = {.on_event = c_event, .on_state = c_state};
    struct sse_stream *s = sse_client_add(cl, &conf, &cbs, c, err, sizeof(err));
    T_ASSERTF(s != NULL, "sse_client_add: %s", err);
    return s;
}

/* Runs until cond or the (scaled) timeout; returns whether cond held. */
#define RUN_UNTIL(cl, cond, ms)                                                                    \
    ({                                                                                             \
        int64_t end_ = clock_mono_ms() + T_TMOUT(ms);                                              \
        while (!(cond) && clock_mono_ms() < end_)                                                  \
            sse_client_run((cl), 50);                                                              \
        (cond);                                                                                    \
    })

static void test_pause_is_backpressure(void)
{
    const long total = 100000; /* ~8 MB: more than the socket buffers hold */
    struct consumer c = {.pause_at = 100};
    char err[256];
    struct sse_client *cl = sse_client_new(err, sizeof(err));
    T_ASSERT(cl != NULL);
    atomic_store(&srv_bytes, 0);
    struct sse_stream *s = add(cl, total, &c);

    T_ASSERT(RUN_UNTIL(cl, c.next >= 100, 5000));
    T_ASSERT(sse_stream_paused(s));
    /* Let a paused stream sit: at most the rest of one chunk arrives. */
    for (int i = 0; i < 10; i++)
        sse_client_run(cl, 50);
    long while_paused = c.next;
    for (int i = 0; i < 10; i++)
        sse_client_run(cl, 50);
    T_EQ_INT(c.next, while_paused);
    T_ASSERTF(while_paused < 100 + 1000, "%ld events after pause", while_paused - 100);
    long sent = atomic_load(&srv_bytes);
    T_ASSERTF(sent < total * 80, "the server wrote %ld of ~%ld bytes: not blocked", sent,
              total * 84);

    sse_stream_pause(s, 0);
    T_ASSERT(RUN_UNTIL(cl, c.next >= total, 30000));
    T_EQ_INT(c.next, total);
    T_EQ_INT(c.bad, 0);
    T_EQ_INT(c.connects, 1);

    struct sse_stream_stats st;
    sse_stream_stats(s, &st);
    T_EQ_INT(st.events, total);
    T_EQ_INT(st.last_status, 200);
    sse_client_destroy(cl);
}

static void test_two_streams_one_paused(void)
{
    struct consumer a = {.pause_at = 1}, b = {.pause_at = -1};
    char err[256];
    struct sse_client *cl = sse_client_new(err, sizeof(err));
    T_ASSERT(cl != NULL);
    struct sse_stream *sa = add(cl, 5000, &a);
    add(cl, 5000, &b);

    T_ASSERT(RUN_UNTIL(cl, b.next >= 5000, 10000));
    T_ASSERTF(a.next < 1000, "paused stream A got %ld events", a.next);
    T_EQ_INT(b.bad, 0);
    sse_stream_pause(sa, 0);
    T_ASSERT(RUN_UNTIL(cl, a.next >= 5000, 10000));
    T_EQ_INT(a.bad, 0);
    /* Both servers closed after their last event: the streams reconnect
     * (and get the events again from 0, which this consumer flags). */
    T_EQ_INT(a.stopped + b.stopped, 0);
    T_EQ_INT(sse_client_run(cl, 0), 2);
    sse_client_destroy(cl);
}

static void test_bad_url_and_header(void)
{
    char err[256];
    struct sse_client *cl = sse_client_new(err, sizeof(err));
    struct sse_stream_conf conf = {.url = "ftp://example.com/x?api_key=SECRET"};
    T_ASSERT(sse_client_add(cl, &conf, NULL, NULL, err, sizeof(err)) == NULL);
    T_ASSERTF(strstr(err, "bad URL") && !strstr(err, "SECRET"), "%s", err);
    const char *hdrs[] = {"no colon here", NULL};
    struct sse_stream_conf conf2 = {.url = "http://127.0.0.1:1/x", .headers = hdrs};
    T_ASSERT(sse_client_add(cl, &conf2, NULL, NULL, err, sizeof(err)) == NULL);
    T_ASSERTF(strstr(err, "Name: value") != NULL, "%s", err);
    T_EQ_INT(sse_client_run(cl, 0), 0);
    sse_client_destroy(cl);
    sse_client_destroy(NULL);
}

int main(void)
{
    srv_start();
    T_RUN(test_pause_is_backpressure);
    T_RUN(test_two_streams_one_paused);
    T_RUN(test_bad_url_and_header);
    return T_DONE();
}
