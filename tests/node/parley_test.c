/*  tests/node/parley_test.c — parley_t, the node as an embeddable actor:
 *
 *  - five nodes in this one process, each seeded with the first only, come
 *    to see every other one online: the seed gives the first link, peer
 *    exchange (on by default) the rest of the mesh;
 *  - each sends a DM to the next, round the ring, and every one arrives;
 *  - parley_new on a home a running node holds fails with
 *    PARLEY_ERR_BUSY and says so, leaving the running node untouched;
 *  - parley_destroy is NULL-safe, frees a parley_t that never started, and
 *    reports status 0 for a loop that ended normally; parley_start twice
 *    is refused;
 *  - a node restarted on the same home keeps its id and its history, and
 *    its peers see it back.
 */
#include "testkit.h"

#include <string.h>

#define S_NODES 5

static bool
s_all_online(tk_node_t **n, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 0; j < count; j++) {
            if (i != j && !tk_online(n[i], n[j]->id)) {
                return false;
            }
        }
    }
    return true;
}

static void
s_config(node_config_t *cfg, const char *home)
{
    node_config_default(cfg);
    cfg->home = home;
    cfg->listen = "tcp://127.0.0.1:*";
    cfg->no_mdns = true;
    cfg->no_local = true;
    cfg->quiet = true;
}

//  A second open of a home in use: refused, and the node there goes on.
static void
s_busy(tk_node_t *n)
{
    node_config_t cfg;
    s_config(&cfg, n->home);
    int err = 0;
    char msg[512] = "";
    parley_t *p = parley_new(&cfg, &err, msg, sizeof msg);
    CHECK(p == NULL && err == PARLEY_ERR_BUSY);
    CHECK(strstr(msg, "already running") && strstr(msg, n->home));
    json_t *id = tk_call(n, "id", NULL);
    CHECK(strcmp(json_string_value(json_object_get(id, "id")), n->id) == 0);
    json_decref(id);
    client_t *c = NULL;
    CHECK(client_connect(n->home, &c) == PARLEY_OK); // its api.sock is still there
    client_destroy(&c);
}

static void
s_lifecycle(const char *dir)
{
    parley_t *p = NULL;
    parley_destroy(&p); // NULL-safe, both ways
    parley_destroy(NULL);
    int status = -1;
    parley_destroy_status(NULL, &status);
    CHECK(status == -1);

    char home[4200];
    snprintf(home, sizeof home, "%s/idle", dir);
    node_config_t cfg;
    s_config(&cfg, home);
    int err = 0;
    char msg[512];
    p = parley_new(&cfg, &err, msg, sizeof msg);
    CHECK(p && err == PARLEY_OK);
    char id[PARLEY_NODE_ID_STRLEN + 1];
    snprintf(id, sizeof id, "%s", parley_id(p));
    char want[4300];
    snprintf(want, sizeof want, "%s/api.sock", home);
    CHECK(strcmp(parley_api_path(p), want) == 0);
    CHECK(strncmp(parley_endpoint(p), "tcp://127.0.0.1:", 16) == 0);
    //  Never started: destroyed all the same, status 0, the home released.
    status = -1;
    parley_destroy_status(&p, &status);
    CHECK(p == NULL && status == 0);

    //  Opened again: the same identity; started twice: refused.
    p = parley_new(&cfg, &err, msg, sizeof msg);
    CHECK(p && strcmp(parley_id(p), id) == 0);
    CHECK(parley_start(p) == PARLEY_OK);
    CHECK(parley_start(p) == PARLEY_ERR_STATE);
    client_t *c = NULL;
    CHECK(client_connect(home, &c) == PARLEY_OK);
    json_t *result = NULL;
    char *why = NULL;
    CHECK(client_call(c, "id", NULL, &result, &why) == PARLEY_OK);
    CHECK(strcmp(json_string_value(json_object_get(result, "id")), id) == 0);
    json_decref(result);
    client_destroy(&c);
    status = -1;
    parley_destroy_status(&p, &status);
    CHECK(p == NULL && status == 0);
    //  Gone: nothing listens on its socket any more.
    CHECK(client_connect(home, &c) == PARLEY_ERR_NOTFOUND);
}

void
parley_test(bool verbose)
{
    char dir[256];
    tk_dir(dir, sizeof dir);
    tk_opts_t opts = { .verbose = verbose };
    tk_node_t *n[S_NODES];
    char name[16];
    n[0] = tk_node_start(dir, "n0", &opts);
    opts.seed = n[0]->seed;
    for (size_t i = 1; i < S_NODES; i++) {
        snprintf(name, sizeof name, "n%zu", i);
        n[i] = tk_node_start(dir, name, &opts);
    }
    //  The seed links each to the first at once; peer exchange does the rest.
    for (size_t i = 1; i < S_NODES; i++) {
        TK_WAIT(10000, tk_online(n[0], n[i]->id) && tk_online(n[i], n[0]->id));
    }
    TK_WAIT(20000, s_all_online(n, S_NODES));
    //  And they learnt the others by peer exchange, not from a seed.
    json_t *peers = tk_call(n[S_NODES - 1], "peers", NULL);
    CHECK(json_array_size(peers) == S_NODES - 1);
    size_t i;
    json_t *p;
    json_array_foreach(peers, i, p)
    {
        const char *id = json_string_value(json_object_get(p, "id"));
        const char *source = json_string_value(json_object_get(p, "source"));
        CHECK(id && source);
        if (strcmp(id, n[0]->id) == 0) {
            CHECK(strcmp(source, "seed") == 0);
        } else {
            //  Whichever side heard first dials: pex here, or inbound.
            CHECK(strcmp(source, "pex") == 0 || strcmp(source, "inbound") == 0);
        }
    }
    json_decref(peers);

    //  Round the ring: each to the next.
    char text[64];
    for (size_t k = 0; k < S_NODES; k++) {
        snprintf(text, sizeof text, "ring %zu", k);
        json_decref(tk_send(n[k], n[(k + 1) % S_NODES]->id, text));
    }
    for (size_t k = 0; k < S_NODES; k++) {
        tk_node_t *to = n[(k + 1) % S_NODES];
        TK_WAIT(10000, tk_count(to, n[k]->id, "received") == 1);
        TK_WAIT(10000, tk_count(n[k], to->id, "delivered") == 1);
        json_t *h = tk_call(to, "history", json_pack("{s:s}", "peer", n[k]->id));
        snprintf(text, sizeof text, "ring %zu", k);
        CHECK(strcmp(json_string_value(json_object_get(json_array_get(h, 0), "text")), text) == 0);
        json_decref(h);
    }

    s_busy(n[0]);
    s_busy(n[2]);

    //  Restarted on its home: the same id, its history, its peers back.
    char id[PARLEY_NODE_ID_STRLEN + 1];
    snprintf(id, sizeof id, "%s", n[2]->id);
    tk_node_stop(&n[2]); // checks the loop's status is 0
    CHECK(n[2] == NULL);
    TK_WAIT(10000, !tk_online(n[1], id) && !tk_online(n[3], id));
    n[2] = tk_node_start(dir, "n2", &opts);
    CHECK(strcmp(n[2]->id, id) == 0);
    CHECK(tk_count(n[2], n[1]->id, "received") == 1 && tk_count(n[2], n[3]->id, NULL) == 1);
    TK_WAIT(20000, s_all_online(n, S_NODES));
    json_decref(tk_send(n[2], n[3]->id, "back again"));
    TK_WAIT(10000, tk_count(n[3], id, "received") == 2);

    s_lifecycle(dir);

    for (size_t k = S_NODES; k-- > 0;) {
        tk_node_stop(&n[k]);
    }
    tk_dir_remove(dir);
}
