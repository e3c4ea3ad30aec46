/*
 * One handle used by several threads at once: each records usage, asks for the status and
 * flushes, concurrently. Afterwards nothing may be pending and every use must have reached the
 * server (the test checks the server's statistics).
 *
 * usage: threads SERVER_URL VENDOR_PUBLIC_KEY STATE_DIR ORGANIZATION PRODUCT THREADS RECORDS
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "tally.h"

static TallyClient *client;
static long records;

/* Prints this thread's failure of `what` and returns 1. */
static int failed(const char *what, int32_t code) {
    char *message = tally_last_error_message(client);
    fprintf(stderr, "%s failed: %d %s: %s\n", what, (int)code, tally_error_name(code),
            message != NULL ? message : "(no message for this thread)");
    tally_string_free(message);
    return 1;
}

static void *work(void *unused) {
    (void)unused;
    for (long i = 0; i < records; i++) {
        int32_t code = tally_record_usage(client, "scan", 1);
        if (code != TALLY_OK) return (void *)(intptr_t)failed("record", code);
        if (i % 5 == 0) {
            TallyStatus status;
            code = tally_status(client, &status);
            if (code != TALLY_OK) return (void *)(intptr_t)failed("status", code);
            if (!status.authorized) {
                fprintf(stderr, "not authorized: %s\n", tally_error_name(status.reason));
                return (void *)1;
            }
        }
        if (i % 10 == 9) {
            code = tally_flush(client, NULL);
            if (code != TALLY_OK) return (void *)(intptr_t)failed("flush", code);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s SERVER_URL VENDOR_PUBLIC_KEY STATE_DIR ORGANIZATION PRODUCT THREADS RECORDS\n",
                argv[0]);
        return 2;
    }
    int threads = atoi(argv[6]);
    records = atol(argv[7]);
    if (threads < 1 || threads > 64 || records < 1) return 2;

    client = tally_new();
    int32_t code = tally_add_server(client, argv[1]);
    if (code == TALLY_OK) code = tally_set_vendor_public_key(client, argv[2]);
    if (code == TALLY_OK) code = tally_set_state_dir(client, argv[3]);
    if (code == TALLY_OK) code = tally_set_organization(client, argv[4]);
    if (code == TALLY_OK) code = tally_set_product(client, argv[5]);
    if (code == TALLY_OK) code = tally_authorize(client, NULL);
    if (code != TALLY_OK) return failed("authorize", code);

    pthread_t ids[64];
    for (int t = 0; t < threads; t++) {
        if (pthread_create(&ids[t], NULL, work, NULL) != 0) return 1;
    }
    int failures = 0;
    for (int t = 0; t < threads; t++) {
        void *result = NULL;
        pthread_join(ids[t], &result);
        failures += result != NULL;
    }
    if (failures > 0) return 1;

    TallyFlushResult sent;
    code = tally_flush(client, &sent);
    if (code != TALLY_OK) return failed("last flush", code);
    TallyStatus status;
    code = tally_status(client, &status);
    if (code != TALLY_OK) return failed("last status", code);
    if (status.pending_reports != 0 || sent.pending != 0) {
        fprintf(stderr, "%llu reports still pending\n", (unsigned long long)status.pending_reports);
        return 1;
    }
    printf("recorded %ld uses in %d threads, none pending\n", records * threads, threads);
    tally_free(client);
    return 0;
}
