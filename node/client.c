/*  node/client.c — blocking JSON-RPC client over the node's Unix socket. */
#include "client.h"

#include "../proto/limits.h"
#include "api_req.h"
#include "home.h"
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct _client_t {
    int fd;    /* connected socket */
    char *buf; /* received bytes not yet returned */
    size_t len;
    json_int_t next_id;
};

int
client_connect(const char *home, client_t **out)
{
    *out = NULL;
    char path[HOME_PATH_MAX];
    if (home_path(home, "api.sock", path, sizeof path) != PARLEY_OK) {
        return PARLEY_ERR_LIMIT;
    }
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof addr.sun_path) {
        return PARLEY_ERR_LIMIT;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return PARLEY_ERR_IO;
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        close(fd);
        return e == ENOENT || e == ECONNREFUSED ? PARLEY_ERR_NOTFOUND : PARLEY_ERR_IO;
    }
    client_t *self = calloc(1, sizeof *self);
    if (!self) {
        close(fd);
        return PARLEY_ERR_NOMEM;
    }
    self->fd = fd;
    self->next_id = 1;
    *out = self;
    return PARLEY_OK;
}

void
client_destroy(client_t **self_p)
{
    if (self_p && *self_p) {
        close((*self_p)->fd);
        free((*self_p)->buf);
        free(*self_p);
        *self_p = NULL;
    }
}

int
client_send(client_t *self, const char *method, json_t *params)
{
    json_t *req = json_pack("{s:s, s:I, s:s, s:o}", "jsonrpc", "2.0", "id", self->next_id++,
                            "method", method, "params", params ? params : json_object());
    if (!req) {
        return PARLEY_ERR_NOMEM;
    }
    size_t len = 0;
    char *line = api_dump_line(req, &len);
    json_decref(req);
    if (!line) {
        return PARLEY_ERR_NOMEM;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(self->fd, line + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            free(line);
            return PARLEY_ERR_IO;
        }
        off += (size_t)w;
    }
    free(line);
    return PARLEY_OK;
}

int
client_recv(client_t *self, int timeout_ms, json_t **out)
{
    *out = NULL;
    for (;;) {
        char *nl = self->len ? memchr(self->buf, '\n', self->len) : NULL;
        if (nl) {
            size_t line_len = (size_t)(nl - self->buf);
            json_error_t jerr;
            *out = json_loadb(self->buf, line_len, 0, &jerr);
            memmove(self->buf, nl + 1, self->len - line_len - 1);
            self->len -= line_len + 1;
            return *out ? PARLEY_OK : PARLEY_ERR_MALFORMED;
        }
        if (self->len > 64u * 1024u * 1024u) {
            return PARLEY_ERR_LIMIT;
        }
        struct pollfd p = { self->fd, POLLIN, 0 };
        int pr = poll(&p, 1, timeout_ms);
        if (pr < 0 && errno == EINTR) {
            continue;
        }
        if (pr == 0) {
            return PARLEY_ERR_STATE;
        }
        char chunk[65536];
        ssize_t r = read(self->fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return PARLEY_ERR_IO;
        }
        char *grown = realloc(self->buf, self->len + (size_t)r);
        if (!grown) {
            return PARLEY_ERR_NOMEM;
        }
        self->buf = grown;
        memcpy(self->buf + self->len, chunk, (size_t)r);
        self->len += (size_t)r;
    }
}

static int
s_status_from_name(const char *name)
{
    for (int code = 0; code >= PARLEY_ERR_LAST; code--) {
        if (strcmp(api_status_name(code), name) == 0) {
            return code;
        }
    }
    return PARLEY_ERR_STATE;
}

int
client_fd(const client_t *self)
{
    return self->fd;
}

bool
client_buffered(const client_t *self)
{
    return self->len && memchr(self->buf, '\n', self->len) != NULL;
}

int
client_call(client_t *self, const char *method, json_t *params, json_t **result, char **errmsg)
{
    return client_call_keep(self, method, params, result, errmsg, NULL);
}

int
client_call_keep(client_t *self, const char *method, json_t *params, json_t **result, char **errmsg,
                 json_t *notes)
{
    *result = NULL;
    *errmsg = NULL;
    json_int_t id = self->next_id;
    int rc = client_send(self, method, params);
    //  The node may have closed the connection after saying why (too many
    //  clients, idle): then the request could not be written, but the reason
    //  is waiting to be read.
    bool unsent = rc == PARLEY_ERR_IO;
    if (unsent) {
        rc = PARLEY_OK;
    }
    while (rc == PARLEY_OK) {
        json_t *msg = NULL;
        rc = client_recv(self, unsent ? 1000 : -1, &msg);
        if (rc != PARLEY_OK) {
            rc = unsent ? PARLEY_ERR_IO : rc;
            break;
        }
        json_t *mid = json_object_get(msg, "id");
        //  An error with a null id is the connection's (too many clients,
        //  idle, a backlog over the cap): ours, since our ids are never null.
        bool conn_err = json_is_null(mid) && json_object_get(msg, "error");
        if (unsent && !conn_err) {
            json_decref(msg); // not the reason; our request never left
            continue;
        }
        if (!conn_err && (!json_is_integer(mid) || json_integer_value(mid) != id)) {
            if (notes && !mid && json_object_get(msg, "method")) {
                json_array_append(notes, msg); // a notification, for the caller
            }
            json_decref(msg); // or a late answer: not ours
            continue;
        }
        json_t *err = json_object_get(msg, "error");
        if (err) {
            const char *text = json_string_value(json_object_get(err, "message"));
            const char *name =
                json_string_value(json_object_get(json_object_get(err, "data"), "error"));
            *errmsg = strdup(text ? text : "error");
            rc = name ? s_status_from_name(name) : PARLEY_ERR_MALFORMED;
        } else {
            *result = json_incref(json_object_get(msg, "result"));
        }
        json_decref(msg);
        return rc;
    }
    return rc;
}
