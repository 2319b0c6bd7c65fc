/*  tools/parleyd.c — the node daemon: a thin main over parley_t. Parses
 *  options, opens the node, runs its loop in the actor's thread and waits for
 *  SIGINT/SIGTERM, then shuts down cleanly (the loop commits its last
 *  transaction, says BYE to peers and closes the database).
 */
#include "../node/home.h"
#include "../node/parley.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_usage(FILE *out)
{
    fprintf(
        out,
        "usage: parleyd [--home DIR] [--listen tcp://ADDR:PORT] [--seed tcp://HOST:PORT#ID]...\n"
        "               [--passphrase-file FILE] [-v]\n"
        "Runs a Parley node in the foreground. Stop it with Ctrl-C or SIGTERM.\n"
        "\n"
        "  --home DIR            node home (else $PARLEY_HOME, $XDG_DATA_HOME/parley,\n"
        "                        ~/.local/share/parley); created on first start\n"
        "  --listen ENDPOINT     CURVE endpoint to bind (default tcp://0.0.0.0:*, an\n"
        "                        ephemeral port, printed at start)\n"
        "  --seed ENDPOINT#ID    a node to connect to; repeatable\n"
        "  --passphrase-file F   passphrase for a sealed identity.key\n"
        "  --no-mdns             do not publish or browse with mDNS (Avahi)\n"
        "  --no-local            no host-local discovery ($PARLEY_RUNTIME_DIR, else\n"
        "                        $XDG_RUNTIME_DIR/parley, else /tmp/parley-UID)\n"
        "  --no-pex              do not exchange signed address records with peers\n"
        "  --relay               replicate every scope heard of (an always-on office box\n"
        "                        or branch gateway): holds envelopes for offline members,\n"
        "                        verifies them, cannot read them\n"
        "  --no-read-receipts    never tell senders when you read their messages\n"
        "  --new-db              start with an empty database although identity.key\n"
        "                        exists and parley.db is empty (its history is lost)\n"
        "  --sync-ms N           reconciliation round period (default 30000, jittered)\n"
        "  --neighbours K        ring neighbours to keep links to, whatever the size of\n"
        "                        the LAN (default 8; 0: every peer known)\n"
        "  --link-idle-ms N      close a link kept for nothing else after this idle time\n"
        "                        (default 300000)\n"
        "  --verify-threads N    threads that check signatures beside the node's own\n"
        "                        (default: one per core beyond the first, at most 8;\n"
        "                        0: the node's thread alone)\n"
        "  -v                    debug logging\n"
        "Forward-secrecy timing (defaults suit real use; tests shorten them):\n"
        "  --ratchet-ms N        DM chain period (default 86400000, one day)\n"
        "  --grace-ms N          old day keys and prekeys are destroyed after this\n"
        "                        (default 14 days)\n"
        "  --prekey-rotate-ms N  new signed prekey this often (default 7 days)\n"
        "  --chan-rotate-ms N    a new channel key this often (default 7 days)\n"
        "  --ping-ms N           liveness ping interval (default 5000)\n"
        "  --retry-ms N          resend unacknowledged envelopes after (default 3000)\n");
}

static int
s_ms_arg(const char *opt, const char *arg, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno || !end || *end || arg[0] == '-' || v == 0 || v > 10ull * 365 * 86400000ull) {
        fprintf(stderr, "parleyd: %s wants a positive number of milliseconds\n", opt);
        return -1;
    }
    *out = v;
    return 0;
}

//  A count: 0 .. max.
static int
s_count_arg(const char *opt, const char *arg, unsigned max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno || !end || *end || arg[0] == '-' || arg[0] == '\0' || v > max) {
        fprintf(stderr, "parleyd: %s wants a number from 0 to %u\n", opt, max);
        return -1;
    }
    *out = v;
    return 0;
}

static bool
s_takes_value(const char *opt)
{
    static const char *const with_value[] = {
        "--home",     "--listen",           "--seed",           "--passphrase-file", "--ratchet-ms",
        "--grace-ms", "--prekey-rotate-ms", "--chan-rotate-ms", "--ping-ms",         "--retry-ms",
        "--sync-ms",  "--link-idle-ms",     "--neighbours",     "--verify-threads",
    };
    for (size_t i = 0; i < sizeof with_value / sizeof with_value[0]; i++) {
        if (strcmp(opt, with_value[i]) == 0) {
            return true;
        }
    }
    return false;
}

int
main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "parleyd: libsodium failed to initialise\n");
        return 1;
    }
    node_config_t cfg;
    node_config_default(&cfg);
    const char *home_flag = NULL;
    const char *pass_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = s_takes_value(a);
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            s_usage(stdout);
            return 0;
        }
        if (strcmp(a, "-v") == 0) {
            cfg.verbose = 1;
            continue;
        }
        if (strcmp(a, "--no-mdns") == 0) {
            cfg.no_mdns = true;
            continue;
        }
        if (strcmp(a, "--no-local") == 0) {
            cfg.no_local = true;
            continue;
        }
        if (strcmp(a, "--no-pex") == 0) {
            cfg.no_pex = true;
            continue;
        }
        if (strcmp(a, "--new-db") == 0) {
            cfg.new_db = true;
            continue;
        }
        if (strcmp(a, "--relay") == 0) {
            cfg.relay = true;
            continue;
        }
        if (strcmp(a, "--no-read-receipts") == 0) {
            cfg.no_read_receipts = true;
            continue;
        }
        if (!takes) {
            fprintf(stderr, "parleyd: unknown option '%s'\n", a);
            s_usage(stderr);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "parleyd: %s needs a value\n", a);
            return 2;
        }
        i++;
        int bad = 0;
        if (strcmp(a, "--home") == 0) {
            home_flag = v;
        } else if (strcmp(a, "--listen") == 0) {
            cfg.listen = v;
        } else if (strcmp(a, "--seed") == 0) {
            if (cfg.n_seeds == NODE_SEEDS_MAX) {
                fprintf(stderr, "parleyd: at most %u seeds\n", NODE_SEEDS_MAX);
                return 2;
            }
            cfg.seeds[cfg.n_seeds++] = v;
        } else if (strcmp(a, "--passphrase-file") == 0) {
            pass_file = v;
        } else if (strcmp(a, "--ratchet-ms") == 0) {
            bad = s_ms_arg(a, v, &cfg.ratchet_ms);
        } else if (strcmp(a, "--grace-ms") == 0) {
            bad = s_ms_arg(a, v, &cfg.grace_ms);
        } else if (strcmp(a, "--prekey-rotate-ms") == 0) {
            bad = s_ms_arg(a, v, &cfg.prekey_rotate_ms);
        } else if (strcmp(a, "--chan-rotate-ms") == 0) {
            bad = s_ms_arg(a, v, &cfg.chan_rotate_ms);
        } else if (strcmp(a, "--ping-ms") == 0) {
            bad = s_ms_arg(a, v, &cfg.ping_ms);
        } else if (strcmp(a, "--retry-ms") == 0) {
            bad = s_ms_arg(a, v, &cfg.retry_ms);
        } else if (strcmp(a, "--sync-ms") == 0) {
            bad = s_ms_arg(a, v, &cfg.sync_ms);
        } else if (strcmp(a, "--link-idle-ms") == 0) {
            bad = s_ms_arg(a, v, &cfg.link_idle_ms);
        } else if (strcmp(a, "--neighbours") == 0) {
            bad = s_count_arg(a, v, NODE_NEIGHBOURS_MAX, &cfg.neighbours);
        } else if (strcmp(a, "--verify-threads") == 0) {
            bad = s_count_arg(a, v, NODE_VERIFY_THREADS_MAX, &cfg.verify_threads);
        } else {
            fprintf(stderr, "parleyd: unknown option '%s'\n", a);
            return 2;
        }
        if (bad) {
            return 2;
        }
    }
    char home[HOME_PATH_MAX];
    if (home_resolve(home_flag, home, sizeof home) != PARLEY_OK) {
        fprintf(stderr, "parleyd: cannot tell where the home is: pass --home DIR or set "
                        "PARLEY_HOME\n");
        return 1;
    }
    cfg.home = home;
    char *pass = NULL;
    size_t pass_len = 0;
    if (pass_file) {
        int rc = home_passphrase_read(pass_file, &pass, &pass_len);
        if (rc != PARLEY_OK) {
            fprintf(stderr, "parleyd: cannot read a passphrase from %s: %s\n", pass_file,
                    rc == PARLEY_ERR_MALFORMED ? "the first line is empty" : strerror(errno));
            return 1;
        }
        cfg.passphrase = pass;
        cfg.pass_len = pass_len;
    }
    //  Signals are taken by sigwait below, in this thread only: blocked
    //  before the node's threads start, so they inherit the mask.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    int err = 0;
    char msg[512];
    parley_t *node = parley_new(&cfg, &err, msg, sizeof msg);
    home_passphrase_free(&pass);
    if (!node) {
        fprintf(stderr, "parleyd: %s\n", msg);
        return err == PARLEY_ERR_BUSY ? 3 : 1;
    }
    printf("parleyd: home %s\n", home);
    printf("parleyd: listening on %s\n", parley_endpoint(node));
    fflush(stdout);
    if (parley_start(node) != PARLEY_OK) {
        fprintf(stderr, "parleyd: cannot start the node's thread\n");
        parley_destroy(&node);
        return 1;
    }
    int sig = 0;
    while (sigwait(&stop, &sig) != 0) {
    }
    int rc = PARLEY_OK;
    parley_destroy_status(&node, &rc);
    if (rc != PARLEY_OK) {
        fprintf(stderr, "parleyd: stopped on error: %s\n", parley_strerror(rc));
        return 1;
    }
    fprintf(stderr, "parleyd: stopped cleanly\n");
    return 0;
}
