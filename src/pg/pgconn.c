/* pgconn: see pgconn.h. */
#include "pg/pgconn.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"

static void notice(void *arg, const char *msg)
{
    (void)arg;
    log_debug("postgres: %.*s", (int)strcspn(msg, "\n"), msg);
}

PGconn *pgconn_open(const char *conninfo, const char *appname, char *errstr, size_t errsz)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {conninfo ? conninfo : "", appname, "10", NULL};
    /* expand_dbname=1: dbname may be a full conninfo or URL, and its
     * settings win over the ones after it only where it sets them. */
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) {
        snprintf(errstr, errsz, "postgres: out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        const char *m = PQerrorMessage(c);
        snprintf(errstr, errsz, "postgres: %.*s", (int)strcspn(m, "\n"), m);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, notice, NULL);
    return c;
}

int pgconn_lost(PGconn *conn, const PGresult *res)
{
    if (!conn || PQstatus(conn) != CONNECTION_OK)
        return 1;
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!st)
        return res == NULL || PQresultStatus(res) == PGRES_FATAL_ERROR;
    return !strncmp(st, "08", 2) || !strncmp(st, "57P", 3) || !strncmp(st, "53", 2) ||
           !strcmp(st, "40001") || !strcmp(st, "40P01");
}
