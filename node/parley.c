/*  node/parley.c — see parley.h. */
#include "parley.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

struct _parley_t {
    node_t *node;    /* owned; driven by the actor's thread once started */
    zactor_t *actor; /* NULL until started */
    int status;      /* how the loop ended */
};

parley_t *
parley_new(const node_config_t *cfg, int *err, char *errmsg, size_t cap)
{
    parley_t *self = calloc(1, sizeof *self);
    if (!self) {
        *err = PARLEY_ERR_NOMEM;
        snprintf(errmsg, cap, "out of memory");
        return NULL;
    }
    zsys_handler_set(NULL); // the embedder owns SIGINT/SIGTERM, not CZMQ
    self->node = node_new(cfg, err, errmsg, cap);
    if (!self->node) {
        free(self);
        return NULL;
    }
    return self;
}

static void
s_actor(zsock_t *pipe, void *arg)
{
    parley_t *self = arg;
    zsock_signal(pipe, 0);
    bool term = false;
    self->status = node_run_pipe(self->node, pipe, &term);
    //  zactor_destroy sends $TERM and waits for the actor to return; when the
    //  loop ended on an error first, wait for that $TERM here.
    while (!term) {
        zmsg_t *msg = zmsg_recv(pipe);
        char *cmd = msg ? zmsg_popstr(msg) : NULL;
        term = !cmd || streq(cmd, "$TERM");
        if (!term) {
            zstr_send(pipe, ""); // the loop is gone: every command gets an empty answer
        }
        zstr_free(&cmd);
        zmsg_destroy(&msg);
    }
}

int
parley_start(parley_t *self)
{
    if (self->actor) {
        return PARLEY_ERR_STATE;
    }
    self->actor = zactor_new(s_actor, self);
    return self->actor ? PARLEY_OK : PARLEY_ERR_IO;
}

void
parley_destroy_status(parley_t **self_p, int *status)
{
    if (!self_p || !*self_p) {
        return;
    }
    parley_t *self = *self_p;
    zactor_destroy(&self->actor);
    if (status) {
        *status = self->status;
    }
    node_destroy(&self->node);
    free(self);
    *self_p = NULL;
}

void
parley_destroy(parley_t **self_p)
{
    parley_destroy_status(self_p, NULL);
}

const char *
parley_endpoint(const parley_t *self)
{
    return node_endpoint(self->node);
}

const char *
parley_id(const parley_t *self)
{
    return node_id(self->node);
}

const char *
parley_api_path(const parley_t *self)
{
    return node_api_path(self->node);
}

void
parley_fault(parley_t *self, int where, int count)
{
    if (!self->actor) {
        node_fault(self->node, where, count);
        return;
    }
    zstr_sendm(self->actor, "FAULT");
    zstr_sendfm(self->actor, "%d", where);
    zstr_sendf(self->actor, "%d", count);
    char *ok = zstr_recv(self->actor);
    zstr_free(&ok);
}
