/*  discovery/discovery.c — the discovery actor (CZMQ zactor): owns the
 *  sources and turns what they find into reports on its pipe (discovery.h).
 *
 *  Loop: the pipe (commands: $TERM), the PULL socket the mDNS source pushes
 *  to from Avahi's thread, and a 500 ms timer that rescans the host-local
 *  directory. Reports from mDNS are forwarded as they are.
 */
#include "discovery.h"

#include "../proto/selftest.h"
#include "local.h"
#include "mdns.h"
#include <czmq.h>
#include <stdio.h>
#include <unistd.h>

#define S_SCAN_MS 500

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
} s_args_t;

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
        mdns_config_t mc = { args->node_id, args->port, args->tag,
                             endpoint,      args->log,  args->log_arg };
        mdns = mdns_new(&mc);
        if (!mdns) {
            zstr_sendx(pipe, "STATUS", "mdns", "down", "cannot start the Avahi client", NULL);
        }
    } else if (!args->mdns) {
        zstr_sendx(pipe, "STATUS", "mdns", "off", "disabled with --no-mdns", NULL);
    }
    zpoller_t *poller = zpoller_new(pipe, reports, NULL);
    int64_t next_scan = 0;
    while (poller) {
        int64_t now = zclock_mono();
        if (local && now >= next_scan) {
            local_scan(local, pipe);
            next_scan = now + S_SCAN_MS;
        }
        zsock_t *which = zpoller_wait(poller, S_SCAN_MS);
        if (which == pipe) {
            zmsg_t *cmd = zmsg_recv(pipe);
            char *verb = cmd ? zmsg_popstr(cmd) : NULL;
            bool term = !verb || streq(verb, "$TERM");
            zstr_free(&verb);
            zmsg_destroy(&cmd);
            if (term) {
                break;
            }
        } else if (which == reports) {
            zmsg_t *msg = zmsg_recv(reports);
            if (msg) {
                zmsg_send(&msg, pipe);
            }
        } else if (zpoller_terminated(poller)) {
            break;
        }
    }
    zpoller_destroy(&poller);
    mdns_destroy(&mdns);
    local_destroy(&local);
    zsock_destroy(&reports);
    free(args);
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
        free(args);
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
    discovery_destroy(&d);
    CHECK(rmdir(dir) == 0); // our endpoint file was removed on the way out
}
