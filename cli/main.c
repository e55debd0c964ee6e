/* main.c — the anamo command: dispatches to one file per subcommand. */
#include <stdio.h>

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "anamo: not yet\n");
    return 2;
}
