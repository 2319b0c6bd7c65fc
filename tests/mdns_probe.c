/*  tests/mdns_probe.c — runs the mDNS discovery source alone and prints what
 *  it reports, for the network-namespace tests (tests/netns/t_mdns.sh).
 *
 *    mdns_probe NODE_ID|new PORT SECONDS [TAG [KEYFILE]]
 *
 *  Publishes as NODE_ID ("new": a fresh random identity) on PORT through the
 *  Avahi daemon that DBUS_SYSTEM_BUS_ADDRESS leads to, and prints
 *
 *    ID NODE_ID                          first, the id it publishes as
 *    SEEN NODE_ID tcp://ADDR:PORT mdns   then every report, one per line,
 *    GONE NODE_ID mdns                   as discovery.h defines them
 *    STATUS mdns up|down DETAIL
 *
 *  for SECONDS (or until SIGINT/SIGTERM), then stops the source and exits 0.
 *  KEYFILE holds 0..4 network secrets, 64 hex digits a line (SPEC §19.3):
 *  with any, the probe announces blinded and sees only records they open.
 *  On SIGHUP it reads KEYFILE again, hands the secrets to the running
 *  source (mdns_set_keys, as the node's KEYS command does) and prints
 *
 *    KEYS N                              once the source has them
 *
 *  A KEYFILE holding the one line "hush" silences the source instead
 *  (mdns_hush, as the node's HUSH command does): it prints "HUSH".
 *  Lines are flushed at once so that a test can follow the output live.
 *  Nothing here listens on PORT: discovery only announces it.
 */
#include <czmq.h>
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../discovery/mdns.h"
#include "../proto/b32.h"
#include "../proto/identity.h"

#define S_KEYS_MAX 4
#define S_HUSH (S_KEYS_MAX + 1) /* s_read_keys: the file says "hush" */

static volatile sig_atomic_t s_reload;

static void
s_on_hup(int sig)
{
    (void)sig;
    s_reload = 1;
}

/*  Reads up to S_KEYS_MAX secrets from path; their count, or -1. */
static int
s_read_keys(const char *path, uint8_t keys[S_KEYS_MAX][32])
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        return -1;
    }
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0') {
            continue;
        }
        if (n == 0 && strcmp(line, "hush") == 0) {
            fclose(fp);
            return S_HUSH;
        }
        if (n == S_KEYS_MAX || hex_decode(line, keys[n], 32) != 0) {
            fclose(fp);
            return -1;
        }
        n++;
    }
    fclose(fp);
    return n;
}

static int
s_usage(void)
{
    fprintf(stderr, "usage: mdns_probe NODE_ID|new PORT SECONDS [TAG [KEYFILE]]\n");
    return 2;
}

/*  Parses a decimal in [lo, hi]; false on anything else. */
static bool
s_number(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        return false;
    }
    *out = v;
    return true;
}

/*  Prints one report as a line: its parts separated by single spaces. */
static void
s_print(zmsg_t *msg)
{
    const char *sep = "";
    for (zframe_t *f = zmsg_first(msg); f; f = zmsg_next(msg)) {
        printf("%s%.*s", sep, (int)zframe_size(f), (const char *)zframe_data(f));
        sep = " ";
    }
    printf("\n");
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    long port = 0, seconds = 0;
    if (argc < 4 || argc > 6 || !s_number(argv[2], 1, 65535, &port)
        || !s_number(argv[3], 0, 86400, &seconds) || sodium_init() < 0) {
        return s_usage();
    }
    char id[PARLEY_NODE_ID_STRLEN + 1];
    if (strcmp(argv[1], "new") == 0) {
        identity_t *me = identity_new();
        if (!me) {
            return 1;
        }
        identity_node_id(identity_ed_pk(me), id);
        identity_destroy(&me);
    } else {
        snprintf(id, sizeof id, "%s", argv[1]);
    }
    printf("ID %s\n", id);
    fflush(stdout);

    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://mdns-probe-%ld", (long)getpid());
    zsock_t *pull = zsock_new(ZMQ_PULL);
    if (!pull || zsock_bind(pull, "%s", endpoint) != 0) {
        fprintf(stderr, "mdns_probe: cannot bind %s\n", endpoint);
        zsock_destroy(&pull);
        return 1;
    }
    uint8_t keys[S_KEYS_MAX][32];
    int n_keys = argc == 6 ? s_read_keys(argv[5], keys) : 0;
    if (n_keys < 0) {
        fprintf(stderr, "mdns_probe: cannot read the secrets in %s\n", argv[5]);
        zsock_destroy(&pull);
        return 1;
    }
    mdns_config_t cfg = { id,   (uint16_t)port, argc >= 5 ? argv[4] : "open", endpoint,
                          NULL, NULL,           (const uint8_t(*)[32])keys,   (size_t)n_keys };
    mdns_t *mdns = mdns_new(&cfg);
    if (!mdns) {
        fprintf(stderr, "mdns_probe: cannot start the mDNS source (bad id or tag?)\n");
        zsock_destroy(&pull);
        return 1;
    }
    if (argc == 6) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = s_on_hup;
        sigaction(SIGHUP, &sa, NULL);
    }
    zpoller_t *poller = zpoller_new(pull, NULL);
    int64_t deadline = zclock_mono() + seconds * 1000;
    while (poller && !zsys_interrupted) {
        int64_t left = deadline - zclock_mono();
        if (left <= 0) {
            break;
        }
        if (s_reload) {
            s_reload = 0;
            n_keys = s_read_keys(argv[5], keys);
            if (n_keys == S_HUSH) {
                if (mdns_hush(mdns) != 0) {
                    fprintf(stderr, "mdns_probe: cannot hush the source\n");
                } else {
                    printf("HUSH\n");
                    fflush(stdout);
                }
            } else if (n_keys < 0
                       || mdns_set_keys(mdns, (const uint8_t(*)[32])keys, (size_t)n_keys) != 0) {
                fprintf(stderr, "mdns_probe: cannot use the secrets in %s\n", argv[5]);
            } else {
                printf("KEYS %d\n", n_keys);
                fflush(stdout);
            }
        }
        if (zpoller_wait(poller, (int)(left < 200 ? left : 200)) == pull) {
            zmsg_t *msg = zmsg_recv(pull);
            if (msg) {
                s_print(msg);
                zmsg_destroy(&msg);
            }
        }
    }
    zpoller_destroy(&poller);
    mdns_destroy(&mdns);
    zsock_destroy(&pull);
    sodium_memzero(keys, sizeof keys);
    return 0;
}
