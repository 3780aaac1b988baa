/*
 * pgconn: opens a libpq connection from a conninfo string or a
 * postgres:// URL (empty: libpq's PG* environment variables), with our
 * application_name and server notices sent to our log at debug level
 * instead of libpq's default printing to stderr.
 */
#ifndef MBTA_PG_PGCONN_H
#define MBTA_PG_PGCONN_H

#include <stddef.h>

#include <libpq-fe.h>

/* Returns a connected PGconn (caller frees with PQfinish) or NULL with a
 * one-line errstr (no password in it: libpq's message never has one). */
PGconn *pgconn_open(const char *conninfo, const char *appname, char *errstr, size_t errsz);

/* Whether the last failure on conn was the connection itself (retry after
 * reconnecting) rather than the statement (SQLSTATE classes 08, 57P, 53). */
int pgconn_lost(PGconn *conn, const PGresult *res);

#endif
