/*
 * A complete minimal use of the Tally C SDK: configure, authorize, record usage, send it, show
 * the status, and report any failure with its stable code and message.
 *
 * usage: minimal SERVER_URL VENDOR_PUBLIC_KEY STATE_DIR ORGANIZATION PRODUCT [SCANS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tally.h"

/* Prints why `what` failed (stable code, its name, the message) and frees the client. */
static int fail(TallyClient *client, const char *what, int32_t code) {
    char *message = tally_last_error_message(client);
    fprintf(stderr, "%s failed: %d %s: %s\n", what, (int)code, tally_error_name(code),
            message != NULL ? message : "");
    tally_string_free(message);
    tally_free(client);
    return 1;
}

/* Unix seconds as a UTC date and time. */
static const char *utc(int64_t seconds, char *text, size_t size) {
    time_t t = (time_t)seconds;
    strftime(text, size, "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
    return text;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s SERVER_URL VENDOR_PUBLIC_KEY STATE_DIR ORGANIZATION PRODUCT [SCANS]\n",
                argv[0]);
        return 2;
    }
    uint64_t scans = argc > 6 ? strtoull(argv[6], NULL, 10) : 1;

    TallyClient *client = tally_new();
    if (client == NULL) {
        return 1;
    }
    int32_t code = tally_add_server(client, argv[1]);
    if (code == TALLY_OK) code = tally_set_vendor_public_key(client, argv[2]);
    if (code == TALLY_OK) code = tally_set_state_dir(client, argv[3]);
    if (code == TALLY_OK) code = tally_set_organization(client, argv[4]);
    if (code == TALLY_OK) code = tally_set_product(client, argv[5]);
    if (code == TALLY_OK) code = tally_start(client);
    if (code != TALLY_OK) return fail(client, "configuration", code);

    TallyStatus status;
    char when[32];
    code = tally_authorize(client, &status);
    if (code != TALLY_OK) return fail(client, "authorize", code);
    printf("authorized%s until %s\n",
           status.cached ? " from the grant held on this device (no server answered)" : "",
           utc(status.expires_at, when, sizeof when));

    code = tally_record_usage(client, "scan", scans);
    if (code != TALLY_OK) return fail(client, "record usage", code);

    TallyFlushResult sent;
    code = tally_flush(client, &sent);
    if (code != TALLY_OK) return fail(client, "flush", code);
    printf("usage sent: %llu reports acknowledged, %llu pending\n",
           (unsigned long long)sent.acknowledged, (unsigned long long)sent.pending);

    code = tally_status(client, &status);
    if (code != TALLY_OK) return fail(client, "status", code);
    printf("status: %s\n", status.authorized ? "authorized" : tally_error_name(status.reason));

    tally_free(client);
    return 0;
}
