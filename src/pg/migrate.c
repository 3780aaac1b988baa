/* migrate: see migrate.h. */
#include "pg/migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/migrations.h"
#include "util/buf.h"

int pg_migrate_schema_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 63 || (name[0] >= '0' && name[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '_'))
            return 0;
    return 1;
}

int pg_migrate_latest(void)
{
    int v = 0;
    for (size_t i = 0; i < pg_migrations_count; i++)
        if (pg_migrations[i].version > v)
            v = pg_migrations[i].version;
    return v;
}

/* Runs sql; 0 or -1 with errstr "what: server message". */
static int exec_ok(PGconn *conn, const char *sql, const char *what, char *errstr, size_t errsz)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *m = PQresultErrorMessage(r);
        snprintf(errstr, errsz, "%s: %.*s", what, (int)strcspn(m, "\n"), m);
        rc = -1;
    }
    PQclear(r);
    return rc;
}

/* Copies sql into out with every ${schema} replaced by qschema. */
static int substitute(struct buf *out, const char *sql, const char *qschema)
{
    const char *p = sql, *m;
    while ((m = strstr(p, "${schema}"))) {
        if (buf_append(out, p, (size_t)(m - p)) || buf_append(out, qschema, strlen(qschema)))
            return -1;
        p = m + strlen("${schema}");
    }
    return buf_append(out, p, strlen(p) + 1) ? -1 : 0; /* with the NUL */
}

int pg_migrate_run(PGconn *conn, const char *schema, char *errstr, size_t errsz)
{
    char q[80], sql[512];
    struct buf text;
    int applied = 0, rc = -1;
    buf_init(&text, 16 << 20);
    if (!pg_migrate_schema_ok(schema)) {
        snprintf(errstr, errsz, "schema \"%.64s\": use lower-case letters, digits and _", schema);
        goto out;
    }
    snprintf(q, sizeof(q), "\"%s\"", schema);
    for (size_t i = 0; i < pg_migrations_count; i++) {
        const struct pg_migration *m = &pg_migrations[i];
        char what[128];
        snprintf(what, sizeof(what), "migration %s", m->name);
        if (exec_ok(conn, "BEGIN", what, errstr, errsz))
            goto out;
        snprintf(sql, sizeof(sql),
                 "SELECT pg_advisory_xact_lock(hashtext('mbta-stream migrate %s'));"
                 "SET LOCAL client_min_messages = warning;"
                 "CREATE SCHEMA IF NOT EXISTS %s;"
                 "CREATE TABLE IF NOT EXISTS %s.schema_migrations (version integer PRIMARY KEY,"
                 " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                 schema, q, q);
        if (exec_ok(conn, sql, what, errstr, errsz))
            goto rollback;
        snprintf(sql, sizeof(sql), "SELECT 1 FROM %s.schema_migrations WHERE version = %d", q,
                 m->version);
        PGresult *r = PQexec(conn, sql);
        int have = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : -1;
        PQclear(r);
        if (have < 0) {
            snprintf(errstr, errsz, "%s: %s", what, PQerrorMessage(conn));
            goto rollback;
        }
        if (have == 0) {
            buf_reset(&text);
            if (substitute(&text, m->sql, q)) {
                snprintf(errstr, errsz, "%s: too large", what);
                goto rollback;
            }
            if (exec_ok(conn, text.data, what, errstr, errsz))
                goto rollback;
            snprintf(sql, sizeof(sql),
                     "INSERT INTO %s.schema_migrations (version, name) VALUES (%d, '%s')", q,
                     m->version, m->name);
            if (exec_ok(conn, sql, what, errstr, errsz))
                goto rollback;
            applied++;
        }
        if (exec_ok(conn, "COMMIT", what, errstr, errsz))
            goto out;
    }
    rc = applied;
    goto out;
rollback:
    PQclear(PQexec(conn, "ROLLBACK"));
out:
    buf_fini(&text);
    return rc;
}
