/* PLACEHOLDER: replaced by the implementation of `mbta-stream serve`. */
#include <stdio.h>

#include "cmd/cmd.h"

int cmd_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "mbta-stream serve: not built yet\n");
    return 2;
}
