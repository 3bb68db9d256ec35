/* shard_print.c - prints shard_gateway(user, COUNT) for each user read from stdin, one per
 * line: the C reference that tests/integration/test_nginx.sh compares nginx's routing to. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard.h"

int main(int argc, char **argv)
{
    char *end = NULL;
    unsigned long count = argc == 2 ? strtoul(argv[1], &end, 10) : 0;
    if (count < 1 || count > 256 || *end != '\0') {
        fprintf(stderr, "usage: shard_print COUNT < users (COUNT in 1..256)\n");
        return 2;
    }
    char line[1024];
    while (fgets(line, sizeof line, stdin)) {
        size_t len = strcspn(line, "\n");
        if (line[len] != '\n' && !feof(stdin)) {
            fprintf(stderr, "shard_print: line longer than %zu bytes\n", sizeof line - 2);
            return 1;
        }
        printf("%u\n", shard_gateway(line, len, (unsigned)count));
    }
    return ferror(stdin) ? 1 : 0;
}
