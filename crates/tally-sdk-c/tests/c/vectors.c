/*
 * Checks the protocol test vectors through the C ABI.
 *
 * usage: vectors FILE   (docs/sdk/test-vectors.json)
 */
#include <stdio.h>
#include <stdlib.h>

#include "tally.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    FILE *file = fopen(argv[1], "rb");
    if (file == NULL) {
        perror(argv[1]);
        return 2;
    }
    size_t size = 0, capacity = 1 << 16;
    char *json = malloc(capacity);
    size_t got;
    while (json != NULL && (got = fread(json + size, 1, capacity - size - 1, file)) > 0) {
        size += got;
        if (capacity - size - 1 == 0) {
            capacity *= 2;
            char *bigger = realloc(json, capacity);
            if (bigger == NULL) free(json);
            json = bigger;
        }
    }
    fclose(file);
    if (json == NULL) return 2;
    json[size] = '\0';

    uint32_t cases = 0;
    char *message = NULL;
    int32_t code = tally_check_test_vectors(json, &cases, &message);
    free(json);
    if (code != TALLY_OK) {
        fprintf(stderr, "%d %s: %s\n", (int)code, tally_error_name(code), message);
        tally_string_free(message);
        return 1;
    }
    printf("checked %u cases\n", (unsigned)cases);
    return 0;
}
