/*  tests/node/api_server_test.c — api_server's self-test, at unit level: a
 *  server on a socket in a temporary directory, driven by zmq_poll over
 *  api_server_poll_fill/handle/flush in the test's own thread, exactly as
 *  the node's loop drives it; its clients are plain Unix-socket fds that the
 *  test reads and writes without blocking. The line handler records each
 *  (client, line) and answers with one JSON line naming them.
 *
 *  - the socket file is mode 0600 whatever the umask, replaces a stale file,
 *    and goes with api_server_destroy;
 *  - lines are split right across partial writes and when several come in
 *    one write; empty lines are skipped;
 *  - each client gets its own replies; a client id is never reused, so a
 *    reply to a client that left reaches nobody;
 *  - a line of PARLEY_API_LINE_MAX bytes passes, a longer one gets an error
 *    line and the client is dropped;
 *  - broadcast reaches subscribers only;
 *  - a client that lets more than API_SERVER_OUT_MAX bytes of replies (or
 *    API_SERVER_NOTE_MAX of notifications) pile up gets one error line
 *    naming the cap after what was queued, and is closed;
 *  - past API_SERVER_CLIENTS_MAX a connection is told so in one line and
 *    closed at once, and a place that frees up is taken again;
 *  - a client idle for API_SERVER_IDLE_MS (the server's clock, driven by
 *    api_server_tick) is told and closed; subscribers stay.
 */
#include "testkit.h"

#include "../../node/api_req.h"
#include "../../node/api_server.h"
#include "../../proto/limits.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#define S_SEEN_MAX 64u

typedef struct {
    api_server_t *srv;
    size_t n;                    /* lines handled */
    uint64_t client[S_SEEN_MAX]; /* the last S_SEEN_MAX: from whom */
    char line[S_SEEN_MAX][64];   /* their first bytes */
    size_t len[S_SEEN_MAX];      /* their length */
} s_rec_t;

//  One client: a non-blocking fd and what it read that is not a line yet.
typedef struct {
    int fd;
    char buf[8192];
    size_t len;
    bool eof; /* the server closed it */
} s_cl_t;

static void
s_on_line(void *arg, uint64_t client, const char *line, size_t len)
{
    s_rec_t *rec = arg;
    size_t i = rec->n++ % S_SEEN_MAX;
    rec->client[i] = client;
    rec->len[i] = len;
    size_t head = len < sizeof rec->line[i] - 1 ? len : sizeof rec->line[i] - 1;
    memcpy(rec->line[i], line, head);
    rec->line[i][head] = '\0';
    if (len == 3 && memcmp(line, "sub", 3) == 0) {
        api_server_subscribe(rec->srv, client);
    }
    json_t *reply = json_pack("{s:I, s:I, s:s%}", "client", (json_int_t)client, "len",
                              (json_int_t)len, "head", line, head);
    CHECK(reply);
    api_server_send(rec->srv, client, reply);
    json_decref(reply);
}

//  One round of the node's loop: poll, read/accept, write.
static void
s_pump(api_server_t *srv, int ms)
{
    zmq_pollitem_t items[1 + API_SERVER_CLIENTS_MAX];
    size_t n = api_server_poll_count(srv);
    CHECK(n <= 1 + API_SERVER_CLIENTS_MAX);
    api_server_poll_fill(srv, items);
    CHECK(zmq_poll(items, (int)n, ms) >= 0);
    api_server_poll_handle(srv, items);
    api_server_flush(srv);
}

static void
s_pump_for(api_server_t *srv, int ms)
{
    uint64_t end = tk_ms() + (uint64_t)ms;
    while (tk_ms() < end) {
        s_pump(srv, 5);
    }
}

static s_cl_t *
s_connect(const char *path)
{
    s_cl_t *cl = calloc(1, sizeof *cl);
    CHECK(cl);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    CHECK(strlen(path) < sizeof addr.sun_path);
    memcpy(addr.sun_path, path, strlen(path) + 1);
    cl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(cl->fd >= 0);
    CHECK(connect(cl->fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    CHECK(fcntl(cl->fd, F_SETFL, O_NONBLOCK) == 0);
    return cl;
}

static void
s_close(s_cl_t **cl_p)
{
    close((*cl_p)->fd);
    free(*cl_p);
    *cl_p = NULL;
}

//  Writes all of buf, pumping the server whenever the socket is full.
static void
s_write(api_server_t *srv, s_cl_t *cl, const char *buf, size_t len)
{
    size_t off = 0;
    uint64_t end = tk_ms() + 20000;
    while (off < len) {
        ssize_t w = send(cl->fd, buf + off, len - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        CHECK(w < 0 && (errno == EAGAIN || errno == EINTR));
        CHECK(tk_ms() < end);
        s_pump(srv, 5);
    }
}

static void
s_puts(api_server_t *srv, s_cl_t *cl, const char *text)
{
    s_write(srv, cl, text, strlen(text));
}

//  Reads what is there; false when nothing (EAGAIN).
static bool
s_fill(s_cl_t *cl)
{
    if (cl->len == sizeof cl->buf) {
        return false;
    }
    ssize_t r = read(cl->fd, cl->buf + cl->len, sizeof cl->buf - cl->len);
    if (r > 0) {
        cl->len += (size_t)r;
        return true;
    }
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        cl->eof = true; // closed (ECONNRESET when it left unread input behind)
    }
    return false;
}

//  The next line the client receives as JSON within ms (pumping the
//  server meanwhile), or NULL on timeout or EOF.
static json_t *
s_recv(api_server_t *srv, s_cl_t *cl, int ms)
{
    uint64_t end = tk_ms() + (uint64_t)ms;
    for (;;) {
        char *nl = memchr(cl->buf, '\n', cl->len);
        if (nl) {
            size_t n = (size_t)(nl - cl->buf);
            json_error_t jerr;
            json_t *obj = json_loadb(cl->buf, n, 0, &jerr);
            CHECK(obj);
            memmove(cl->buf, nl + 1, cl->len - n - 1);
            cl->len -= n + 1;
            return obj;
        }
        if (cl->eof || tk_ms() >= end) {
            return NULL;
        }
        if (!s_fill(cl)) {
            s_pump(srv, 5);
        }
    }
}

//  The echo of a line: from which client, of what length and head.
static uint64_t
s_echo(api_server_t *srv, s_cl_t *cl, const char *head, size_t len)
{
    json_t *r = s_recv(srv, cl, 5000);
    CHECK(r);
    CHECK(strcmp(json_string_value(json_object_get(r, "head")), head) == 0);
    CHECK((size_t)json_integer_value(json_object_get(r, "len")) == len);
    uint64_t id = (uint64_t)json_integer_value(json_object_get(r, "client"));
    CHECK(id > 0);
    json_decref(r);
    return id;
}

//  A round trip that tells the client's id.
static uint64_t
s_hello(api_server_t *srv, s_cl_t *cl)
{
    s_puts(srv, cl, "hello\n");
    return s_echo(srv, cl, "hello", 5);
}

//  Whether the server closed the client within ms (reading and dropping
//  anything still in flight).
static bool
s_closed(api_server_t *srv, s_cl_t *cl, int ms)
{
    uint64_t end = tk_ms() + (uint64_t)ms;
    while (!cl->eof && tk_ms() < end) {
        if (!s_fill(cl)) {
            s_pump(srv, 5);
        }
        cl->len = 0;
    }
    return cl->eof;
}

static void
s_socket_file(const char *dir, char *path, size_t cap, s_rec_t *rec)
{
    //  A path that does not fit a sockaddr_un is refused.
    char longpath[200];
    memset(longpath, 'p', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    api_server_t *srv = NULL;
    CHECK(api_server_new(longpath, s_on_line, rec, &srv) == PARLEY_ERR_LIMIT && srv == NULL);

    //  A stale file where the socket goes is replaced (the caller holds the
    //  home's lock); the socket is 0600 even under a permissive umask.
    snprintf(path, cap, "%s/api.sock", dir);
    FILE *f = fopen(path, "w");
    CHECK(f && fputs("stale", f) >= 0 && fclose(f) == 0);
    mode_t old = umask(0);
    int rc = api_server_new(path, s_on_line, rec, &srv);
    umask(old);
    CHECK(rc == PARLEY_OK && srv);
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);
    CHECK(api_server_poll_count(srv) == 1);
    rec->srv = srv;
}

static void
s_lines(api_server_t *srv, s_rec_t *rec, s_cl_t *a)
{
    size_t seen = rec->n;
    //  One line in three writes, two and a half lines in one, empty lines.
    s_puts(srv, a, "{\"a\":");
    s_pump_for(srv, 50);
    CHECK(rec->n == seen); // not a line yet
    s_puts(srv, a, "1");
    s_pump_for(srv, 50);
    CHECK(rec->n == seen);
    s_puts(srv, a, "}\nsecond line\n\n\nthi");
    uint64_t id = s_echo(srv, a, "{\"a\":1}", 7);
    CHECK(s_echo(srv, a, "second line", 11) == id);
    s_pump_for(srv, 50);
    CHECK(rec->n == seen + 2);
    s_puts(srv, a, "rd\n");
    CHECK(s_echo(srv, a, "third", 5) == id);
    CHECK(rec->n == seen + 3);
    CHECK(rec->client[seen % S_SEEN_MAX] == id
          && strcmp(rec->line[seen % S_SEEN_MAX], "{\"a\":1}") == 0);
    CHECK(strcmp(rec->line[(seen + 2) % S_SEEN_MAX], "third") == 0);
}

static void
s_two_clients(api_server_t *srv, s_cl_t *a, s_cl_t *b, uint64_t *ida, uint64_t *idb)
{
    //  Both write before either reads: each gets its own answers, in order.
    s_puts(srv, a, "from a 1\nfrom a 2\n");
    s_puts(srv, b, "from b 1\n");
    *ida = s_echo(srv, a, "from a 1", 8);
    *idb = s_echo(srv, b, "from b 1", 8);
    CHECK(*ida != *idb);
    CHECK(s_echo(srv, a, "from a 2", 8) == *ida);
    CHECK(s_recv(srv, b, 200) == NULL); // nothing else for b
}

static void
s_broadcast(api_server_t *srv, s_cl_t *a, s_cl_t *b, uint64_t idb)
{
    s_puts(srv, b, "sub\n");
    CHECK(s_echo(srv, b, "sub", 3) == idb);
    json_t *note = api_notification("peer", json_pack("{s:s}", "state", "online"));
    api_server_broadcast(srv, note);
    json_decref(note);
    json_t *got = s_recv(srv, b, 5000);
    CHECK(got && strcmp(json_string_value(json_object_get(got, "method")), "peer") == 0);
    json_decref(got);
    CHECK(s_recv(srv, a, 300) == NULL); // a never subscribed
}

//  A client that left and one that came after never share an id.
static void
s_ids(api_server_t *srv, const char *path, s_cl_t **a_p, uint64_t ida, uint64_t idb)
{
    size_t before = api_server_poll_count(srv);
    s_close(a_p);
    TK_WAIT(5000, (s_pump(srv, 5), api_server_poll_count(srv) == before - 1));
    s_cl_t *c = s_connect(path);
    uint64_t idc = s_hello(srv, c);
    CHECK(idc != ida && idc != idb && idc > ida && idc > idb);
    //  A reply to the client that left is dropped: c's next line is its own.
    json_t *late = json_pack("{s:s}", "late", "for the old client");
    api_server_send(srv, ida, late);
    json_decref(late);
    s_puts(srv, c, "mine\n");
    CHECK(s_echo(srv, c, "mine", 4) == idc);
    CHECK(s_recv(srv, c, 200) == NULL);
    s_close(&c);
}

static void
s_long_lines(api_server_t *srv, const char *path, s_rec_t *rec, s_cl_t *b)
{
    char *big = malloc(PARLEY_API_LINE_MAX + 2);
    CHECK(big);
    //  Exactly PARLEY_API_LINE_MAX bytes: a line like any other.
    memset(big, 'x', PARLEY_API_LINE_MAX);
    big[PARLEY_API_LINE_MAX] = '\n';
    s_cl_t *d = s_connect(path);
    s_write(srv, d, big, PARLEY_API_LINE_MAX + 1);
    char head[sizeof rec->line[0]];
    memset(head, 'x', sizeof head - 1);
    head[sizeof head - 1] = '\0';
    uint64_t idd = s_echo(srv, d, head, PARLEY_API_LINE_MAX);
    CHECK(s_hello(srv, d) == idd);

    //  One byte more, and no end in sight: an error line, then the client
    //  is dropped; the handler never sees any of it.
    size_t seen = rec->n;
    big[PARLEY_API_LINE_MAX] = 'x'; // no newline
    s_write(srv, d, big, PARLEY_API_LINE_MAX + 1);
    json_t *err = s_recv(srv, d, 5000);
    CHECK(err);
    CHECK(json_integer_value(json_object_get(json_object_get(err, "error"), "code"))
          == API_ERR_INVALID);
    CHECK(strstr(json_string_value(json_object_get(json_object_get(err, "error"), "message")),
                 "too long"));
    CHECK(json_is_null(json_object_get(err, "id")));
    json_decref(err);
    CHECK(s_closed(srv, d, 5000));
    CHECK(rec->n == seen);
    s_close(&d);

    //  One byte more in two writes, the end of the line in the second, read
    //  by the server apart: judged whole, refused the same way.
    d = s_connect(path);
    s_write(srv, d, big, PARLEY_API_LINE_MAX - 10);
    s_pump_for(srv, 200);
    s_puts(srv, d, "xxxxxxxxxxx\n"); // 11 more: PARLEY_API_LINE_MAX + 1
    err = s_recv(srv, d, 5000);
    CHECK(err);
    CHECK(json_integer_value(json_object_get(json_object_get(err, "error"), "code"))
          == API_ERR_INVALID);
    json_decref(err);
    CHECK(s_closed(srv, d, 5000));
    CHECK(rec->n == seen);
    s_close(&d);

    //  Another client is not affected.
    s_puts(srv, b, "still\n");
    s_echo(srv, b, "still", 5);
    free(big);
}

//  A client that reads nothing while its replies pile up past
//  API_SERVER_OUT_MAX is dropped; until then it is kept.
//  Everything the client gets until the server closes it (pumping the
//  server meanwhile); malloc'd, *len bytes.
static char *
s_read_to_eof(api_server_t *srv, s_cl_t *cl, size_t *len)
{
    size_t cap = 1u << 20, n = 0;
    char *all = malloc(cap);
    CHECK(all);
    uint64_t end = tk_ms() + 20000;
    while (!cl->eof) {
        CHECK(tk_ms() < end);
        if (s_fill(cl)) {
            if (n + cl->len > cap) {
                cap = 2 * (n + cl->len);
                all = realloc(all, cap);
                CHECK(all);
            }
            memcpy(all + n, cl->buf, cl->len);
            n += cl->len;
            cl->len = 0;
        } else {
            s_pump(srv, 5);
        }
    }
    *len = n;
    return all;
}

//  A client that never reads: kept while under the cap; past it, one error
//  line naming the cap ends what it is sent, and it is closed.
static void
s_backlog(api_server_t *srv, const char *path, bool notes, size_t cap)
{
    s_cl_t *f = s_connect(path);
    uint64_t idf = notes ? (s_puts(srv, f, "sub\n"), s_echo(srv, f, "sub", 3)) : s_hello(srv, f);
    size_t chunk = 1u << 20;
    char *text = malloc(chunk + 1);
    CHECK(text);
    memset(text, 'y', chunk);
    text[chunk] = '\0';
    json_t *obj = json_pack("{s:s}", "pad", text);
    CHECK(obj);
    size_t line = 0;
    char *dumped = api_dump_line(obj, &line);
    CHECK(dumped && line > chunk);
    free(dumped);
    size_t lines = cap / line + 8; // far more than the kernel's buffers take on top
    for (size_t i = 0; i < lines; i++) {
        if (notes) {
            api_server_broadcast(srv, obj);
        } else {
            api_server_send(srv, idf, obj);
        }
        api_server_flush(srv);
    }
    json_decref(obj);
    free(text);
    size_t len = 0;
    char *all = s_read_to_eof(srv, f, &len);
    CHECK(len > cap && len < cap + (16u << 20));
    CHECK(all[len - 1] == '\n');
    char *last = all + len - 1;
    while (last > all && last[-1] != '\n') {
        last--;
    }
    json_error_t jerr;
    json_t *err = json_loadb(last, (size_t)(all + len - last), 0, &jerr);
    CHECK(err);
    char mib[32];
    snprintf(mib, sizeof mib, "%zu MiB", cap >> 20);
    const char *msg = json_string_value(json_object_get(json_object_get(err, "error"), "message"));
    CHECK(msg && strstr(msg, mib) && strstr(msg, notes ? "notification" : "reply"));
    json_decref(err);
    free(all);
    s_close(&f);
}

static void
s_clients_max(api_server_t *srv, const char *path, s_cl_t *b)
{
    s_cl_t *cls[API_SERVER_CLIENTS_MAX];
    size_t n = 0;
    while (api_server_poll_count(srv) < 1 + API_SERVER_CLIENTS_MAX) {
        CHECK(n < API_SERVER_CLIENTS_MAX);
        cls[n] = s_connect(path);
        s_hello(srv, cls[n]);
        n++;
    }
    //  One more: the kernel takes the connection, the server tells it why
    //  in one line, closes it at once and never reads from it.
    s_cl_t *over = s_connect(path);
    (void)send(over->fd, "hello\n", 6, MSG_NOSIGNAL); // may find it closed already
    json_t *r = s_recv(srv, over, 5000);
    const char *msg = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
    char want[64];
    snprintf(want, sizeof want, "too many API clients (%u)", API_SERVER_CLIENTS_MAX);
    CHECK(msg && strstr(msg, want));
    json_decref(r);
    CHECK(s_closed(srv, over, 5000));
    CHECK(api_server_poll_count(srv) == 1 + API_SERVER_CLIENTS_MAX);
    s_close(&over);
    //  Everyone in keeps being served.
    s_puts(srv, b, "still\n");
    s_echo(srv, b, "still", 5);
    //  A place that frees up is taken again.
    s_close(&cls[--n]);
    TK_WAIT(5000, (s_pump(srv, 5), api_server_poll_count(srv) == API_SERVER_CLIENTS_MAX));
    cls[n] = s_connect(path);
    s_hello(srv, cls[n]);
    n++;
    CHECK(api_server_poll_count(srv) == 1 + API_SERVER_CLIENTS_MAX);
    while (n > 0) {
        s_close(&cls[--n]);
    }
}

//  Idle clients: one neither subscribed nor with output pending is told and
//  closed after the idle time of the server's clock; a subscriber stays;
//  a byte in restarts the count.
static void
s_idle(api_server_t *srv, const char *path)
{
    uint64_t t = 1000000;
    //  The clients of s_clients_max have left (b stays).
    TK_WAIT(5000, (s_pump(srv, 5), api_server_poll_count(srv) <= 3));
    api_server_tick(srv, t);
    s_cl_t *idle = s_connect(path);
    s_cl_t *busy = s_connect(path);
    s_cl_t *sub = s_connect(path);
    s_hello(srv, idle);
    s_hello(srv, busy);
    s_puts(srv, sub, "sub\n");
    s_echo(srv, sub, "sub", 3);
    api_server_tick(srv, t + API_SERVER_IDLE_MS - 1);
    s_pump_for(srv, 50);
    s_hello(srv, busy); // at t + IDLE - 1
    api_server_tick(srv, t + API_SERVER_IDLE_MS);
    json_t *r = s_recv(srv, idle, 5000);
    const char *msg = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
    CHECK(msg && strstr(msg, "idle for 300 s"));
    json_decref(r);
    CHECK(s_closed(srv, idle, 5000));
    s_hello(srv, busy);
    s_hello(srv, sub);
    //  A clock that goes back closes nobody.
    api_server_tick(srv, 5);
    s_pump_for(srv, 50);
    s_hello(srv, busy);
    api_server_set_idle(srv, 10);
    api_server_tick(srv, t + 3 * API_SERVER_IDLE_MS);
    CHECK(s_closed(srv, busy, 5000));
    s_hello(srv, sub);
    api_server_set_idle(srv, API_SERVER_IDLE_MS);
    s_close(&idle);
    s_close(&busy);
    s_close(&sub);
}

void
api_server_test(bool verbose)
{
    (void)verbose;
    char dir[256], path[512];
    tk_dir(dir, sizeof dir);
    static s_rec_t rec;
    memset(&rec, 0, sizeof rec);
    s_socket_file(dir, path, sizeof path, &rec);
    api_server_t *srv = rec.srv;

    s_cl_t *a = s_connect(path);
    s_cl_t *b = s_connect(path);
    s_lines(srv, &rec, a);
    uint64_t ida = 0, idb = 0;
    s_two_clients(srv, a, b, &ida, &idb);
    s_broadcast(srv, a, b, idb);
    s_ids(srv, path, &a, ida, idb);
    s_long_lines(srv, path, &rec, b);
    s_backlog(srv, path, false, API_SERVER_OUT_MAX);
    s_clients_max(srv, path, b);
    s_idle(srv, path);
    //  Last: b, a subscriber that reads nothing here, overflows too.
    s_backlog(srv, path, true, API_SERVER_NOTE_MAX);

    //  Destroy closes every client and removes the socket file.
    api_server_destroy(&srv);
    CHECK(srv == NULL);
    api_server_destroy(&srv); // NULL-safe
    struct stat st;
    CHECK(stat(path, &st) != 0 && errno == ENOENT);
    uint64_t end = tk_ms() + 2000;
    while (!b->eof && tk_ms() < end) {
        (void)s_fill(b);
        b->len = 0;
        tk_sleep(5);
    }
    CHECK(b->eof);
    s_close(&b);
    tk_dir_remove(dir);
}
