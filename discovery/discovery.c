/*  discovery/discovery.c — the discovery actor (CZMQ zactor): owns the
 *  sources and turns what they find into reports on its pipe (discovery.h).
 *
 *  Loop: the pipe (commands: $TERM, KEYS, HUSH), the PULL socket the mDNS source pushes
 *  to from Avahi's thread, and a 500 ms timer that rescans the host-local
 *  directory. Reports from mDNS are forwarded as they are.
 */
#include "discovery.h"

#include "../proto/selftest.h"
#include "local.h"
#include "mdns.h"
#include <czmq.h>
#include <sodium.h>
#include <stdio.h>
#include <unistd.h>

#define S_SCAN_MS 500    /* host-local scans without inotify */
#define S_RESCAN_MS 5000 /* with inotify: for processes that died leaving their file */
#define S_KEYS_MAX 4u    /* network secrets in one KEYS command (BLIND_KEYS_MAX) */
#define S_KEY_LEN 32u

struct _discovery_t {
    zactor_t *actor; /* runs s_actor */
};

typedef struct {
    char node_id[64]; /* copied from the config */
    uint16_t port;
    char tag[65];
    bool mdns;
    bool local;
    char runtime_dir[1024];
    discovery_log_fn *log;
    void *log_arg;
    uint8_t keys[S_KEYS_MAX][S_KEY_LEN]; /* network secrets at start; wiped once handed over */
    size_t n_keys;
    bool hush;
} s_args_t;

static void
s_args_free(s_args_t *args)
{
    sodium_memzero(args->keys, sizeof args->keys);
    free(args);
}

static void
s_log(s_args_t *args, const char *line)
{
    if (args->log) {
        args->log(args->log_arg, line);
    } else {
        fprintf(stderr, "%s\n", line);
    }
}

/*  "KEYS" SECRETS: hands the secrets to the mDNS source (discovery.h).
 *  Every frame of the command is wiped, whatever it held. */
static void
s_keys(s_args_t *args, mdns_t *mdns, zmsg_t *cmd, bool *warned)
{
    zframe_t *f = zmsg_first(cmd);
    size_t size = f ? zframe_size(f) : 0;
    bool ok = f && zmsg_size(cmd) == 1 && size % S_KEY_LEN == 0 && size / S_KEY_LEN <= S_KEYS_MAX;
    int rc = 0;
    if (ok && mdns) {
        rc = mdns_set_keys(mdns, (const uint8_t(*)[S_KEY_LEN])zframe_data(f), size / S_KEY_LEN);
    }
    if ((!ok || rc != 0) && !*warned) {
        *warned = true;
        char line[160];
        snprintf(line, sizeof line,
                 "discovery: ignoring a KEYS command (%zu frames, %zu bytes): want one frame of "
                 "0..%u × %u bytes, no all-zero secret",
                 zmsg_size(cmd), size, S_KEYS_MAX, S_KEY_LEN);
        s_log(args, line);
    }
    for (f = zmsg_first(cmd); f; f = zmsg_next(cmd)) {
        sodium_memzero(zframe_data(f), zframe_size(f));
    }
}

int
discovery_runtime_dir(char *out, size_t cap)
{
    const char *env = getenv("PARLEY_RUNTIME_DIR");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;
    if (env && *env) {
        n = snprintf(out, cap, "%s", env);
    } else if (xdg && *xdg) {
        n = snprintf(out, cap, "%s/parley", xdg);
    } else {
        n = snprintf(out, cap, "/tmp/parley-%ld", (long)geteuid());
    }
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static void
s_actor(zsock_t *pipe, void *argp)
{
    s_args_t *args = argp;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://parley-discovery-%p", (void *)pipe);
    zsock_t *reports = zsock_new_pull(endpoint);
    local_t *local = NULL;
    mdns_t *mdns = NULL;
    //  Signal first: zactor_new's wait discards anything sent before it.
    zsock_signal(pipe, 0);
    if (args->local) {
        const char *why = NULL;
        local = local_new(args->runtime_dir, args->node_id, args->port, &why);
        zstr_sendx(pipe, "STATUS", "local", local ? "up" : "down", local ? args->runtime_dir : why,
                   NULL);
    } else {
        zstr_sendx(pipe, "STATUS", "local", "off", "disabled with --no-local", NULL);
    }
    if (args->mdns && reports) {
        mdns_config_t mc = { args->node_id,
                             args->port,
                             args->tag,
                             endpoint,
                             args->log,
                             args->log_arg,
                             (const uint8_t(*)[32])args->keys,
                             args->n_keys,
                             args->hush };
        mdns = mdns_new(&mc);
        if (!mdns) {
            zstr_sendx(pipe, "STATUS", "mdns", "down", "cannot start the Avahi client", NULL);
        }
    } else if (!args->mdns) {
        zstr_sendx(pipe, "STATUS", "mdns", "off", "disabled with --no-mdns", NULL);
    }
    sodium_memzero(args->keys, sizeof args->keys); /* the source holds derived keys */
    //  zmq_poll rather than a zpoller: the directory watch is a plain descriptor.
    int watch = local ? local_fd(local) : -1;
    int64_t period = watch >= 0 ? S_RESCAN_MS : S_SCAN_MS;
    int64_t next_scan = 0;
    bool keys_warned = false;
    for (;;) {
        int64_t now = zclock_mono();
        if (local && (now >= next_scan || local_changed(local))) {
            local_scan(local, pipe);
            next_scan = now + period;
        }
        zmq_pollitem_t items[3] = {
            { zsock_resolve(pipe), 0, ZMQ_POLLIN, 0 },
            { reports ? zsock_resolve(reports) : NULL, -1, reports ? ZMQ_POLLIN : 0, 0 },
            { NULL, watch, watch >= 0 ? ZMQ_POLLIN : 0, 0 },
        };
        long wait = local ? (long)(next_scan > now ? next_scan - now : 0) : -1;
        if (zmq_poll(items, 3, wait) < 0) {
            if (zmq_errno() == EINTR) {
                continue;
            }
            break; // the context is terminating
        }
        if (items[0].revents & ZMQ_POLLIN) {
            zmsg_t *cmd = zmsg_recv(pipe);
            char *verb = cmd ? zmsg_popstr(cmd) : NULL;
            bool term = !verb || streq(verb, "$TERM");
            if (verb && streq(verb, "KEYS")) {
                s_keys(args, mdns, cmd, &keys_warned);
            } else if (verb && streq(verb, "HUSH") && mdns) {
                (void)mdns_hush(mdns); // only fails without a running source
            }
            zstr_free(&verb);
            zmsg_destroy(&cmd);
            if (term) {
                break;
            }
        }
        if (items[1].revents & ZMQ_POLLIN) {
            zmsg_t *msg = zmsg_recv(reports);
            if (msg) {
                zmsg_send(&msg, pipe);
            }
        }
    }
    mdns_destroy(&mdns);
    local_destroy(&local);
    zsock_destroy(&reports);
    s_args_free(args);
}

discovery_t *
discovery_new(const discovery_config_t *cfg)
{
    discovery_t *self = zmalloc(sizeof *self);
    s_args_t *args = zmalloc(sizeof *args);
    if (!self || !args) {
        free(self);
        free(args);
        return NULL;
    }
    if (cfg->n_keys > S_KEYS_MAX || (cfg->n_keys > 0 && !cfg->keys)) {
        free(self);
        s_args_free(args);
        return NULL;
    }
    if (cfg->n_keys > 0) {
        memcpy(args->keys, cfg->keys, cfg->n_keys * S_KEY_LEN);
    }
    args->n_keys = cfg->n_keys;
    args->hush = cfg->hush;
    snprintf(args->node_id, sizeof args->node_id, "%s", cfg->node_id);
    snprintf(args->tag, sizeof args->tag, "%s", cfg->tag ? cfg->tag : "open");
    args->port = cfg->port;
    args->mdns = cfg->mdns;
    args->local = cfg->local;
    args->log = cfg->log;
    args->log_arg = cfg->log_arg;
    if (cfg->runtime_dir) {
        snprintf(args->runtime_dir, sizeof args->runtime_dir, "%s", cfg->runtime_dir);
    } else if (discovery_runtime_dir(args->runtime_dir, sizeof args->runtime_dir) != 0) {
        args->local = false;
    }
    self->actor = zactor_new(s_actor, args); // the actor frees args
    if (!self->actor) {
        s_args_free(args);
        free(self);
        return NULL;
    }
    return self;
}

void
discovery_destroy(discovery_t **self_p)
{
    if (self_p && *self_p) {
        zactor_destroy(&(*self_p)->actor);
        free(*self_p);
        *self_p = NULL;
    }
}

void *
discovery_pipe(discovery_t *self)
{
    return self->actor;
}

void *
discovery_socket(discovery_t *self)
{
    return zsock_resolve(self->actor);
}

void
discovery_test(bool verbose)
{
    (void)verbose;
    char dir[] = "/tmp/parley-disc-test.XXXXXX";
    CHECK(mkdtemp(dir));
    const char *ida = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    discovery_config_t cfg = { ida, 7001, "open", false, true, dir };
    discovery_t *d = discovery_new(&cfg);
    CHECK(d);
    char *kind = NULL, *src = NULL, *state = NULL, *detail = NULL;
    CHECK(zstr_recvx(discovery_pipe(d), &kind, &src, &state, &detail, NULL) == 4);
    CHECK(streq(kind, "STATUS") && streq(src, "local") && streq(state, "up"));
    zstr_free(&kind);
    zstr_free(&src);
    zstr_free(&state);
    zstr_free(&detail);
    CHECK(zstr_recvx(discovery_pipe(d), &kind, &src, &state, &detail, NULL) == 4);
    CHECK(streq(src, "mdns") && streq(state, "off"));
    zstr_free(&kind);
    zstr_free(&src);
    zstr_free(&state);
    zstr_free(&detail);
    //  KEYS with mdns off: taken (nothing to blind) or refused, never a crash;
    //  the actor still answers afterwards (it stops on $TERM below).
    uint8_t secrets[5][32];
    randombytes_buf(secrets, sizeof secrets);
    const size_t sizes[] = { 0, 32, 128, 160, 33 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        zmsg_t *m = zmsg_new();
        CHECK(m && zmsg_addstr(m, "KEYS") == 0 && zmsg_addmem(m, secrets, sizes[i]) == 0);
        CHECK(zmsg_send(&m, discovery_pipe(d)) == 0);
    }
    CHECK(zstr_send(discovery_pipe(d), "KEYS") == 0); // no frame at all
    CHECK(zstr_send(discovery_pipe(d), "HUSH") == 0); // nothing to silence
    sodium_memzero(secrets, sizeof secrets);
    discovery_destroy(&d);
    CHECK(rmdir(dir) == 0); // our endpoint file was removed on the way out

    //  More than four keys at start: refused.
    cfg.keys = (const uint8_t(*)[32])secrets;
    cfg.n_keys = 5;
    CHECK(discovery_new(&cfg) == NULL);
}
