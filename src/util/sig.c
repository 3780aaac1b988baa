/* sig: see sig.h. */
#include "util/sig.h"

#include <string.h>
#include <unistd.h>

volatile sig_atomic_t sig_stop = 0;

static void sig_handler(int signo)
{
    (void)signo;
    if (sig_stop) {
        static const char msg[] = "second signal: exiting without draining\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)w;
        _exit(130);
    }
    sig_stop = 1;
}

void sig_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = sig_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}
