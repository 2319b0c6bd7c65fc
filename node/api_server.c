/*  node/api_server.c — see api_server.h. */
#include "api_server.h"

#include "../proto/limits.h"
#include "api_req.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#define S_READ_CHUNK 65536u

typedef struct {
    uint64_t id; /* never reused */
    int fd;      /* connected socket, non-blocking */
    char *in;    /* bytes received, not yet a whole line */
    size_t in_len;
    char *out; /* bytes to write */
    size_t out_len;
    size_t out_off;    /* written so far */
    size_t out_cap;    /* allocated */
    bool subscribed;   /* receives notifications */
    bool closing;      /* drop after the output drains; nothing more is queued */
    bool dead;         /* drop now */
    uint64_t seen_ms;  /* api_server time of its last byte in, or of the accept */
    uint64_t wrote_ms; /* ... of its last byte out, or of the accept */
} s_client_t;

struct api_server {
    int fd;          /* listening socket */
    char path[4200]; /* its file */
    s_client_t **clients;
    size_t n_clients;
    uint64_t next_id;
    api_server_line_fn *on_line;
    void *arg;
    uint64_t now_ms;  /* the caller's clock, as of the last api_server_tick */
    uint64_t idle_ms; /* API_SERVER_IDLE_MS, or what api_server_set_idle says */
    bool ticked;      /* now_ms has been set once */
};

int
api_server_new(const char *path, api_server_line_fn *on_line, void *arg, api_server_t **out)
{
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof addr.sun_path) {
        return PARLEY_ERR_LIMIT;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    api_server_t *self = calloc(1, sizeof *self);
    if (!self) {
        return PARLEY_ERR_NOMEM;
    }
    snprintf(self->path, sizeof self->path, "%s", path);
    self->on_line = on_line;
    self->arg = arg;
    self->next_id = 1;
    self->idle_ms = API_SERVER_IDLE_MS;
    //  The caller holds the daemon lock, so a socket file left here is a dead node's.
    unlink(path);
    self->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (self->fd < 0) {
        free(self);
        return PARLEY_ERR_IO;
    }
    mode_t old = umask(0077);
    int b = bind(self->fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (b != 0 || chmod(path, 0600) != 0 || listen(self->fd, 64) != 0) {
        close(self->fd);
        free(self);
        return PARLEY_ERR_IO;
    }
    *out = self;
    return PARLEY_OK;
}

static void
s_client_free(s_client_t *cl)
{
    close(cl->fd);
    free(cl->in);
    free(cl->out);
    free(cl);
}

void
api_server_destroy(api_server_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    api_server_t *self = *self_p;
    for (size_t i = 0; i < self->n_clients; i++) {
        s_client_free(self->clients[i]);
    }
    free(self->clients);
    close(self->fd);
    unlink(self->path);
    free(self);
    *self_p = NULL;
}

static s_client_t *
s_find(const api_server_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->n_clients; i++) {
        if (self->clients[i]->id == id) {
            return self->clients[i];
        }
    }
    return NULL;
}

static void
s_append(s_client_t *cl, const char *line, size_t len)
{
    //  Amortized: the written head is dropped only once it is half the
    //  buffer (or before growing it), and the buffer grows by doubling, so a
    //  large backlog is not copied again for every line queued behind it;
    //  the buffer stays under twice what is waiting.
    if (cl->out_off > 0 && (cl->out_off >= cl->out_len / 2 || cl->out_len + len > cl->out_cap)) {
        memmove(cl->out, cl->out + cl->out_off, cl->out_len - cl->out_off);
        cl->out_len -= cl->out_off;
        cl->out_off = 0;
    }
    if (cl->out_len + len > cl->out_cap) {
        size_t cap = cl->out_cap ? cl->out_cap : 4096;
        while (cap < cl->out_len + len) {
            cap *= 2;
        }
        char *grown = realloc(cl->out, cap);
        if (!grown) {
            cl->dead = true;
            return;
        }
        cl->out = grown;
        cl->out_cap = cap;
    }
    memcpy(cl->out + cl->out_len, line, len);
    cl->out_len += len;
}

//  Queues one last error line (past any cap: it is small) and closes the
//  client once that is written.
static void
s_last_words(s_client_t *cl, int status, const char *msg)
{
    json_t *err = api_error_parley(NULL, status, msg);
    size_t len = 0;
    char *line = err ? api_dump_line(err, &len) : NULL;
    json_decref(err);
    if (!line) {
        cl->dead = true;
        return;
    }
    s_append(cl, line, len);
    free(line);
    cl->closing = true;
}

//  Queues obj unless the backlog would pass cap; a client over it is told
//  so in one line and closed: a reader that slow would hold the node's
//  memory.
static void
s_queue(s_client_t *cl, const json_t *obj, size_t cap, const char *what)
{
    if (cl->closing || cl->dead) {
        return;
    }
    size_t len = 0;
    char *line = api_dump_line(obj, &len);
    if (!line) {
        cl->dead = true;
        return;
    }
    if (cl->out_len - cl->out_off + len > cap) {
        free(line);
        char msg[160];
        snprintf(msg, sizeof msg, "%s backlog over %zu MiB: this client does not read; closing",
                 what, cap >> 20);
        s_last_words(cl, PARLEY_ERR_LIMIT, msg);
        return;
    }
    s_append(cl, line, len);
    free(line);
}

static void
s_read(api_server_t *self, s_client_t *cl)
{
    char chunk[S_READ_CHUNK];
    ssize_t r = read(cl->fd, chunk, sizeof chunk);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (r <= 0) {
        cl->closing = true; // peer closed: finish writing what it asked for
        return;
    }
    cl->seen_ms = self->now_ms;
    char *grown = realloc(cl->in, cl->in_len + (size_t)r);
    if (!grown) {
        cl->dead = true;
        return;
    }
    cl->in = grown;
    memcpy(cl->in + cl->in_len, chunk, (size_t)r);
    cl->in_len += (size_t)r;
    //  Only the new bytes can end a line; a line is judged whole, wherever
    //  the reads that brought it were cut.
    size_t start = 0;
    bool too_long = false;
    for (size_t i = cl->in_len - (size_t)r; i < cl->in_len && !too_long; i++) {
        if (cl->in[i] != '\n') {
            continue;
        }
        too_long = i - start > PARLEY_API_LINE_MAX;
        if (!too_long && i > start) {
            self->on_line(self->arg, cl->id, cl->in + start, i - start);
        }
        start = i + 1;
    }
    memmove(cl->in, cl->in + start, cl->in_len - start);
    cl->in_len -= start;
    if (too_long || cl->in_len > PARLEY_API_LINE_MAX) {
        json_t *err = api_error(NULL, API_ERR_INVALID, "request line too long");
        s_queue(cl, err, API_SERVER_OUT_MAX, "reply");
        json_decref(err);
        cl->closing = true;
        cl->in_len = 0;
    }
}

static void
s_write(api_server_t *self, s_client_t *cl)
{
    while (cl->out_off < cl->out_len) {
        ssize_t w = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && errno == EAGAIN) {
            return;
        }
        if (w <= 0) {
            cl->dead = true;
            return;
        }
        cl->out_off += (size_t)w;
        cl->wrote_ms = self->now_ms;
    }
    cl->out_off = cl->out_len = 0;
}

//  A client refused at the door is told why in one line, which a fresh
//  socket's buffer always takes, so it never sees a bare reset.
static void
s_refuse(int fd)
{
    char msg[96];
    snprintf(msg, sizeof msg, "too many API clients (%u): try again later", API_SERVER_CLIENTS_MAX);
    json_t *err = api_error_parley(NULL, PARLEY_ERR_BUSY, msg);
    size_t len = 0;
    char *line = err ? api_dump_line(err, &len) : NULL;
    if (line) {
        (void)send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT); // best effort: closing anyway
    }
    free(line);
    json_decref(err);
    close(fd);
}

static void
s_accept(api_server_t *self)
{
    for (;;) {
        int fd = accept4(self->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        s_client_t *cl = NULL;
        s_client_t **grown = NULL;
        if (self->n_clients < API_SERVER_CLIENTS_MAX) {
            cl = calloc(1, sizeof *cl);
            grown = cl ? realloc(self->clients, (self->n_clients + 1) * sizeof *grown) : NULL;
        }
        if (!grown) {
            free(cl);
            s_refuse(fd); // over the client limit (or out of memory): refuse this one
            continue;
        }
        cl->fd = fd;
        cl->seen_ms = cl->wrote_ms = self->now_ms;
        cl->id = self->next_id++;
        self->clients = grown;
        self->clients[self->n_clients++] = cl;
    }
}

size_t
api_server_poll_count(const api_server_t *self)
{
    return 1 + self->n_clients;
}

void
api_server_poll_fill(const api_server_t *self, void *items_v)
{
    zmq_pollitem_t *items = items_v;
    items[0] = (zmq_pollitem_t){ NULL, self->fd, ZMQ_POLLIN, 0 };
    for (size_t i = 0; i < self->n_clients; i++) {
        const s_client_t *cl = self->clients[i];
        short ev = cl->closing ? 0 : ZMQ_POLLIN;
        if (cl->out_len > cl->out_off) {
            ev |= ZMQ_POLLOUT;
        }
        items[1 + i] = (zmq_pollitem_t){ NULL, cl->fd, ev, 0 };
    }
}

void
api_server_poll_handle(api_server_t *self, const void *items_v)
{
    const zmq_pollitem_t *items = items_v;
    size_t n = self->n_clients; // clients accepted below are polled next round
    for (size_t i = 0; i < n; i++) {
        s_client_t *cl = self->clients[i];
        if (items[1 + i].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) {
            s_read(self, cl);
        }
    }
    if (items[0].revents & ZMQ_POLLIN) {
        s_accept(self);
    }
}

void
api_server_send(api_server_t *self, uint64_t client, const json_t *obj)
{
    s_client_t *cl = s_find(self, client);
    if (cl) {
        s_queue(cl, obj, API_SERVER_OUT_MAX, "reply");
    }
}

void
api_server_broadcast(api_server_t *self, const json_t *obj)
{
    for (size_t i = 0; i < self->n_clients; i++) {
        if (self->clients[i]->subscribed) {
            s_queue(self->clients[i], obj, API_SERVER_NOTE_MAX, "notification");
        }
    }
}

void
api_server_subscribe(api_server_t *self, uint64_t client)
{
    s_client_t *cl = s_find(self, client);
    if (cl) {
        cl->subscribed = true;
    }
}

void
api_server_flush(api_server_t *self)
{
    size_t keep = 0;
    for (size_t i = 0; i < self->n_clients; i++) {
        s_client_t *cl = self->clients[i];
        if (!cl->dead) {
            s_write(self, cl);
        }
        bool drained = cl->out_len == cl->out_off;
        if (cl->dead || (cl->closing && drained)) {
            s_client_free(cl);
        } else {
            self->clients[keep++] = cl;
        }
    }
    self->n_clients = keep;
}

void
api_server_set_idle(api_server_t *self, uint64_t idle_ms)
{
    self->idle_ms = idle_ms;
}

//  Time since then; 0 if the clock went back (never a false timeout).
static uint64_t
s_since(uint64_t now, uint64_t then)
{
    return now > then ? now - then : 0;
}

void
api_server_tick(api_server_t *self, uint64_t now_ms)
{
    for (size_t i = 0; i < self->n_clients && !self->ticked; i++) {
        //  Accepted before the clock was known: their time starts now.
        self->clients[i]->seen_ms = self->clients[i]->wrote_ms = now_ms;
    }
    self->ticked = true;
    self->now_ms = now_ms;
    for (size_t i = 0; i < self->n_clients; i++) {
        s_client_t *cl = self->clients[i];
        bool pending = cl->out_len > cl->out_off;
        uint64_t quiet = s_since(now_ms, cl->seen_ms);
        uint64_t stuck = s_since(now_ms, cl->wrote_ms);
        if (cl->dead) {
            continue;
        }
        if (pending && stuck >= self->idle_ms && quiet >= self->idle_ms) {
            cl->dead = true; // its output has not moved for so long: it will not read
        } else if (!cl->closing && !cl->subscribed && !pending && quiet >= self->idle_ms
                   && stuck >= self->idle_ms) {
            char msg[96];
            snprintf(msg, sizeof msg, "idle for %llu s: closing",
                     (unsigned long long)(self->idle_ms / 1000));
            s_last_words(cl, PARLEY_ERR_EXPIRED, msg);
        }
    }
}
