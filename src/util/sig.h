/*
 * sig: SIGINT/SIGTERM set a flag; loops poll it with short timeouts
 * (kcat's term()). A second signal while draining exits at once with 130.
 * SIGPIPE is ignored (sockets report EPIPE instead).
 */
#ifndef MBTA_SIG_H
#define MBTA_SIG_H

#include <signal.h>

extern volatile sig_atomic_t sig_stop;

void sig_install(void);

#endif
