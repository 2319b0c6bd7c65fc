/*  tools/parley.c — the command-line client.
 *
 *  `init` and `id` work on the home directly (no daemon needed); every other
 *  command is one call to the node's local API. With --json a command prints
 *  exactly one JSON value (watch: one per event, one per line). Errors are one
 *  line on stderr and a non-zero exit: 1 failure, 2 usage, 3 no daemon.
 *
 *  Human-readable output never writes a string from the node raw: message
 *  text, names, endpoints, tags, reasons and errors can come from peers, and
 *  a terminal obeys what it is sent (escape sequences, bidi controls, CR and
 *  LF). Each one goes through proto/textsafe (s_safe and the helpers around
 *  it). --json output is the exact data, for programs, and is left alone.
 */
#include "../node/client.h"
#include "../node/home.h"
#include "../proto/identity.h"
#include "../proto/limits.h"
#include "../proto/textsafe.h"
#include "../store/store.h"
#include "chat/chat.h"
#include "qr.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char home[HOME_PATH_MAX]; /* resolved home */
    bool json;                /* --json */
    int argc;                 /* remaining words after the command */
    char **argv;
} cli_t;

static void
s_usage(FILE *out)
{
    fprintf(out,
            "usage: parley [--home DIR] [--json] COMMAND ...\n"
            "  chat [--no-bell] [--mouse]     the terminal chat (/help inside it)\n"
            "  init [--passphrase-file F]     create an identity (refuses to overwrite)\n"
            "  id                             this node's id, short id and fingerprint\n"
            "  status                         the running node: endpoints, peers, log, counters\n"
            "  send PEER TEXT [--ttl SECONDS] send a direct message (returns once durable);\n"
            "                                 with --ttl it disappears everywhere after that\n"
            "  read PEER                      mark PEER's messages read (PEER sees \"read\")\n"
            "  history PEER [--limit N]       the conversation with PEER, oldest first (the last\n"
            "                                 N, default 50; 0: all, fetched a page at a time)\n"
            "  watch                          stream messages, delivery updates, peers and\n"
            "                                 roster events\n"
            "  peers                          peers and their connection state\n"
            "  peers forget PEER              disconnect PEER and forget it (not saved, not\n"
            "                                 redialled; it may come back as a new peer)\n"
            "  contacts add ID NAME [--replace] | list | remove NAME | verify PEER\n"
            "  safety PEER                    the 60-digit safety number of you and PEER\n"
            "  doctor [PEER]                  discovery health, and why PEER is not connected\n"
            "  recover                        parleyd stopped: copy what can be read of a damaged\n"
            "                                 parley.db into a new one; the old one is kept as\n"
            "                                 parley.db.damaged-TIMESTAMP\n"
            "private networks (a roster kept by admins, enforced by every node):\n"
            "  network create NAME [--my-name N]  found a network; you are its first admin\n"
            "  network show | leave           the roster and your role; leave the network\n"
            "  network log [--limit N]        every roster event, oldest first (default 100; 0:\n"
            "                                 all), void ones with the reason\n"
            "  invite [--name LABEL] [--role member|admin] [--expires DUR] [--uses N] [--qr]\n"
            "                                 (admins) print an invite code: a bearer token;\n"
            "                                 DUR like 90s, 30m, 24h (default), 7d; uses 1\n"
            "  invite list | revoke ID|CODE   invites and their state; end one\n"
            "  join CODE|- [--name N] [--timeout S]\n"
            "                                 join with a code (-: read it from stdin); waits S\n"
            "                                 seconds (default 60) for a member to add you\n"
            "  member remove PEER [--reason TEXT] | role PEER admin|member    (admins)\n"
            "  relay add PEER | remove PEER   (admins) let PEER carry others' envelopes\n"
            "channels (end-to-end encrypted groups; owners and admins manage members):\n"
            "  channel create NAME [--topic T] [--history shared|from-join] [--announce]\n"
            "                 [--network]     (network admins) every network member is in it\n"
            "  channel list | info NAME       your channels; one with its members and roles\n"
            "  channel add NAME PEER... | remove NAME PEER | role NAME PEER admin|member|reader\n"
            "                                 (owners, admins) manage members; a removal hands\n"
            "                                 the others a new key the removed cannot read\n"
            "  channel topic NAME TEXT | rekey NAME   (owners, admins)\n"
            "  channel leave NAME             leave a channel\n"
            "  send '#NAME' TEXT | history '#NAME' [--limit N] | read '#NAME'   as for a peer;\n"
            "                                 your messages show how many members hold them\n"
            "                                 and have read them\n"
            "PEER is a node id, a contact name, or a unique short id.\n");
}

static int s_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
s_die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "parley: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

static void
s_print_json(const json_t *v)
{
    char *text = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (text) {
        puts(text);
        free(text);
    }
}

static void
s_time(uint64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

static const char *
s_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

static uint64_t
s_int(const json_t *obj, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(obj, key));
    return v > 0 ? (uint64_t)v : 0;
}

/*  What starts each continuation line of a multi-line message. Every line
 *  the CLI starts itself begins with a timestamp or a word of its own. A
 *  peer's text reaches the terminal with no raw CR (it is shown as ^M) and
 *  with each of its LFs followed by this marker, so no line of a message
 *  starts with peer text: none can pass for another message or for output
 *  of ours. Continuation lines indented under their header are what
 *  `git log` does with a commit's body and mail clients do with quoted
 *  text; the bar shows where one message ends. (Showing each line break as
 *  a symbol such as ⏎ would be as safe but turns a poem, a list or a pasted
 *  log into one unreadable line.) */
#define S_CONT "  | "
#define S_PREVIEW 60u /* bytes of a channel's last message in the list */

/*  Writes the len bytes at s to out made safe for a terminal (rules:
 *  proto/textsafe.h), cont as there, then spaces up to width bytes as
 *  printf's %-*s pads. If memory runs out, writes "<?>" rather than the raw
 *  bytes: nothing unescaped ever reaches the terminal. */
static void
s_safe(FILE *out, const char *s, size_t len, const char *cont, size_t width)
{
    size_t max = textsafe_escaped_max(len, cont);
    char *buf = max < SIZE_MAX ? malloc(max + 1) : NULL;
    size_t n = 0;
    if (buf && textsafe_escape((const uint8_t *)s, len, cont, buf, max + 1, &n) == PARLEY_OK) {
        fwrite(buf, 1, n, out);
    } else {
        fputs("<?>", out);
        n = 3;
    }
    free(buf);
    for (; n < width; n++) {
        fputc(' ', out);
    }
}

//  s_safe of a C string (NULL: nothing) on stdout, on one line.
static void
s_put(const char *s, size_t width)
{
    s_safe(stdout, s ? s : "", s ? strlen(s) : 0, NULL, width);
}

//  s_safe of obj's string member key on stdout, on one line; whole, by its
//  JSON length, so that even an embedded NUL is shown.
static void
s_jput(const json_t *obj, const char *key, size_t width)
{
    const json_t *v = json_object_get(obj, key);
    const char *s = json_string_value(v);
    s_safe(stdout, s ? s : "", s ? json_string_length(v) : 0, NULL, width);
}

//  An error line from the node, which may quote what a peer sent.
static void
s_error(const char *err)
{
    fputs("parley: ", stderr);
    s_safe(stderr, err, strlen(err), NULL, 0);
    fputc('\n', stderr);
}

/*  The short id of obj's key (short_key, else the first 8 characters of
 *  id_key), then its name (name_key, may be NULL) in parentheses, on one
 *  line, escaped. Nothing when the id is absent (a CREATE has no target). */
static void
s_who(const json_t *obj, const char *short_key, const char *id_key, const char *name_key)
{
    const json_t *sv = json_object_get(obj, short_key);
    const json_t *iv = json_object_get(obj, id_key);
    if (json_string_value(sv) && json_string_length(sv) > 0) {
        s_safe(stdout, json_string_value(sv), json_string_length(sv), NULL, 0);
    } else if (json_string_value(iv)) {
        size_t len = json_string_length(iv);
        s_safe(stdout, json_string_value(iv), len < 8 ? len : 8, NULL, 0);
    } else {
        return;
    }
    const json_t *nv = name_key ? json_object_get(obj, name_key) : NULL;
    if (json_string_value(nv) && json_string_length(nv) > 0) {
        printf(" (");
        s_safe(stdout, json_string_value(nv), json_string_length(nv), NULL, 0);
        printf(")");
    }
}

/* ---- offline commands ---- */

static int
c_init(cli_t *cli)
{
    const char *pass_file = NULL;
    for (int i = 0; i < cli->argc; i++) {
        if (strcmp(cli->argv[i], "--passphrase-file") == 0 && i + 1 < cli->argc) {
            pass_file = cli->argv[++i];
        } else {
            return s_die(2, "init: unexpected '%s'", cli->argv[i]);
        }
    }
    char *pass = NULL;
    size_t pass_len = 0;
    if (pass_file) {
        int rc = home_passphrase_read(pass_file, &pass, &pass_len);
        if (rc != PARLEY_OK) {
            return s_die(1, "cannot read a passphrase from %s (missing, or first line empty)",
                         pass_file);
        }
    }
    if (home_ensure(cli->home) != PARLEY_OK) {
        home_passphrase_free(&pass);
        return s_die(1, "cannot create the home directory %s", cli->home);
    }
    //  main checked a home that existed; this one may have just been made.
    char why[3 * HOME_PATH_MAX];
    if (home_check(cli->home, why, sizeof why) != PARLEY_OK) {
        home_passphrase_free(&pass);
        return s_die(1, "%s", why);
    }
    identity_t *id = identity_new();
    int rc = id ? home_identity_create(cli->home, id, pass, pass_len) : PARLEY_ERR_NOMEM;
    home_passphrase_free(&pass);
    if (rc == PARLEY_ERR_EXISTS) {
        identity_destroy(&id);
        return s_die(1, "%s/identity.key exists: refusing to overwrite an identity", cli->home);
    }
    if (rc != PARLEY_OK) {
        identity_destroy(&id);
        return s_die(1, "cannot write %s/identity.key", cli->home);
    }
    char nid[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(identity_ed_pk(id), nid);
    identity_destroy(&id);
    //  The database is made with the identity: a node that later finds
    //  identity.key without parley.db knows that it lost its log and
    //  recovers (node/node.c, "A lost database").
    char db[HOME_PATH_MAX];
    store_t *store = NULL;
    rc = home_path(cli->home, "parley.db", db, sizeof db);
    if (rc == PARLEY_OK) {
        rc = store_open(db, &store);
    }
    store_destroy(&store);
    if (rc != PARLEY_OK) {
        return s_die(1, "cannot create %s/parley.db: %s", cli->home, parley_strerror(rc));
    }
    if (cli->json) {
        json_t *out =
            json_pack("{s:s, s:s, s:b}", "id", nid, "home", cli->home, "sealed", pass_file != NULL);
        s_print_json(out);
        json_decref(out);
    } else {
        printf("created identity %s in %s%s\n", nid, cli->home,
               pass_file ? " (sealed with your passphrase)" : "");
    }
    return 0;
}

static int
c_id(cli_t *cli)
{
    uint8_t pk[32];
    int rc = home_identity_public(cli->home, pk);
    if (rc == PARLEY_ERR_NOTFOUND) {
        return s_die(1, "no identity in %s: run 'parley init' or start parleyd", cli->home);
    }
    if (rc != PARLEY_OK) {
        return s_die(1, "%s/identity.key is damaged or unreadable", cli->home);
    }
    char nid[PARLEY_NODE_ID_STRLEN + 1], sid[PARLEY_SHORT_ID_STRLEN + 1], fp[50];
    identity_node_id(pk, nid);
    identity_short_id(pk, sid);
    identity_fingerprint(pk, fp);
    if (cli->json) {
        json_t *out = json_pack("{s:s, s:s, s:s}", "id", nid, "short_id", sid, "fingerprint", fp);
        s_print_json(out);
        json_decref(out);
    } else {
        printf("id:          %s\nshort id:    %s\nfingerprint: %s\n", nid, sid, fp);
    }
    return 0;
}

/*  path + suffix into out; false if it does not fit. */
static bool
s_join(char *out, size_t cap, const char *path, const char *suffix)
{
    int n = snprintf(out, cap, "%s%s", path, suffix);
    return n > 0 && (size_t)n < cap;
}

static off_t
s_size(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0 ? sb.st_size : -1;
}

static void
s_print_recovered(const cli_t *cli, const store_recover_report_t *rep, const char *kept_as)
{
    if (cli->json) {
        json_t *tables = json_array();
        for (size_t i = 0; i < rep->n; i++) {
            const store_recover_table_t *t = &rep->table[i];
            json_array_append_new(
                tables, json_pack("{s:s, s:I, s:I, s:I, s:I, s:b, s:b}", "table", t->table, "kept",
                                  (json_int_t)t->kept, "lost", (json_int_t)t->lost, "stretches",
                                  (json_int_t)t->stretches, "refused", (json_int_t)t->refused,
                                  "tail_lost", t->tail_lost, "unreadable", t->unreadable));
        }
        json_t *out = json_pack("{s:s, s:o}", "damaged", kept_as, "tables", tables);
        s_print_json(out);
        json_decref(out);
        return;
    }
    printf("recovered %s/parley.db, table by table:\n", cli->home);
    for (size_t i = 0; i < rep->n; i++) {
        const store_recover_table_t *t = &rep->table[i];
        printf("  %-14s kept %" PRIu64, t->table, t->kept);
        if (t->unreadable) {
            printf(", unreadable: all of it lost");
        } else if (t->stretches > 0) {
            printf(", lost");
            if (t->lost > 0) {
                printf(" up to %" PRIu64 " in", t->lost);
            }
            printf(" %" PRIu64 " unreadable stretch%s", t->stretches, t->stretches > 1 ? "es" : "");
            if (t->tail_lost) {
                printf(" (and the end of the table: how many rows is unknown)");
            }
        } else {
            printf(", lost 0");
        }
        if (t->refused > 0) {
            printf(", %" PRIu64 " refused (they named lost rows, or clashed)", t->refused);
        }
        printf("\n");
    }
    printf("the damaged file is kept as %s; start parleyd again\n", kept_as);
}

//  Salvage of a damaged parley.db, parleyd stopped (its lock is taken for
//  the length of the command): store_recover copies what can be read into
//  parley.db.recovering; then the damaged file (and its WAL) is renamed
//  parley.db.damaged-TIMESTAMP and the new one takes its place.
static int
c_recover(cli_t *cli)
{
    if (cli->argc != 0) {
        return s_die(2, "usage: parley recover");
    }
    int lock = -1;
    long pid = 0;
    int rc = home_lock(cli->home, &lock, &pid);
    if (rc == PARLEY_ERR_BUSY) {
        return s_die(1, "parleyd (pid %ld) is running on %s: stop it first", pid, cli->home);
    }
    if (rc != PARLEY_OK) {
        return s_die(1, "cannot lock %s/parleyd.lock (is %s a Parley home?)", cli->home, cli->home);
    }
    char db[HOME_PATH_MAX], tmp[HOME_PATH_MAX], wal[HOME_PATH_MAX + 8];
    char kept[HOME_PATH_MAX + 64], kept_wal[HOME_PATH_MAX + 72], x[HOME_PATH_MAX + 16];
    if (home_path(cli->home, "parley.db", db, sizeof db) != PARLEY_OK
        || home_path(cli->home, "parley.db.recovering", tmp, sizeof tmp) != PARLEY_OK
        || !s_join(wal, sizeof wal, db, "-wal")) {
        home_unlock(&lock);
        return s_die(1, "the home path %s is too long", cli->home);
    }
    if (s_size(db) < 0) {
        home_unlock(&lock);
        return s_die(1, "no database at %s: nothing to recover", db);
    }
    if (s_size(db) == 0 && s_size(wal) <= 0) {
        home_unlock(&lock);
        return s_die(1,
                     "%s is empty: nothing to recover. Put back a copy if you have one; to "
                     "start with an empty database, run parleyd --new-db",
                     db);
    }
    //  A stale attempt that was interrupted is only a copy: start over.
    static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        if (s_join(x, sizeof x, tmp, sfx[i])) {
            (void)unlink(x); // absent is fine; a file that stays makes store_recover refuse
        }
    }
    store_recover_report_t rep;
    rc = store_recover(db, tmp, &rep);
    if (rc != PARLEY_OK) {
        home_unlock(&lock);
        if (rc == PARLEY_ERR_CORRUPT) {
            return s_die(1,
                         "%s cannot be read at all (its header or schema is damaged): "
                         "nothing could be saved; it is left as it was",
                         db);
        }
        if (rc == PARLEY_ERR_UNSUPPORTED) {
            return s_die(1, "%s comes from a newer Parley; recover it with that version", db);
        }
        return s_die(1, "cannot recover %s: %s; it is left as it was", db, parley_strerror(rc));
    }
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm) == NULL || strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm) == 0) {
        snprintf(stamp, sizeof stamp, "%lld", (long long)now);
    }
    //  Two recoveries in one second: a suffix keeps the earlier one.
    bool named = false;
    for (int k = 0; k < 100 && !named; k++) {
        char suffix[64];
        snprintf(suffix, sizeof suffix, k == 0 ? ".damaged-%s" : ".damaged-%s.%d", stamp, k);
        named = s_join(kept, sizeof kept, db, suffix) && s_size(kept) < 0;
    }
    if (!named || !s_join(kept_wal, sizeof kept_wal, kept, "-wal") || rename(db, kept) != 0) {
        home_unlock(&lock);
        return s_die(1, "cannot move %s aside (%s); the recovered copy is %s", db,
                     named ? strerror(errno) : "no free name", tmp);
    }
    if (s_size(wal) == 0) {
        (void)unlink(wal); // an empty WAL (our own read opened it) holds nothing to keep
    } else if (s_size(wal) > 0 && rename(wal, kept_wal) != 0) {
        fprintf(stderr, "parley: cannot move %s aside: %s\n", wal, strerror(errno));
    }
    if (s_join(x, sizeof x, db, "-shm")) {
        (void)unlink(x); // the damaged file's index of its WAL, rebuilt when it is opened
    }
    if (rename(tmp, db) != 0) {
        home_unlock(&lock);
        return s_die(1, "cannot put %s in place of %s: %s (rename it yourself)", tmp, db,
                     strerror(errno));
    }
    int dfd = open(cli->home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); // the renames survive a crash; failing, they still happened
        (void)close(dfd);
    }
    home_unlock(&lock);
    s_print_recovered(cli, &rep, kept);
    return 0;
}

/* ---- online commands ---- */

static int
s_connect(cli_t *cli, client_t **client)
{
    int rc = client_connect(cli->home, client);
    if (rc == PARLEY_ERR_NOTFOUND) {
        fprintf(stderr, "parley: no parleyd is running for %s: start it with 'parleyd --home %s'\n",
                cli->home, cli->home);
        return 3;
    }
    if (rc != PARLEY_OK) {
        return s_die(1, "cannot connect to %s/api.sock", cli->home);
    }
    return 0;
}

//  One API call; prints the error and returns an exit code, or 0 with *out.
static int
s_call(cli_t *cli, const char *method, json_t *params, json_t **out)
{
    client_t *client = NULL;
    int code = s_connect(cli, &client);
    if (code != 0) {
        json_decref(params);
        return code;
    }
    char *err = NULL;
    int rc = client_call(client, method, params, out, &err);
    client_destroy(&client);
    if (rc != PARLEY_OK) {
        s_error(err ? err : parley_strerror(rc));
        free(err);
        return 1;
    }
    return 0;
}

//  s_call, and with --json print the result: *out is then NULL and the
//  command has nothing left to do.
static int
s_fetch(cli_t *cli, const char *method, json_t *params, json_t **out)
{
    int code = s_call(cli, method, params, out);
    if (code == 0 && cli->json) {
        s_print_json(*out);
        json_decref(*out);
        *out = NULL;
    }
    return code;
}

static void
s_print_msg(const json_t *m)
{
    char when[32];
    s_time(s_int(m, "ts_ms"), when, sizeof when);
    bool out = json_is_true(json_object_get(m, "outgoing"));
    printf("%s  %s ", when, out ? "you ->" : "from  ");
    s_jput(m, *s_str(m, "peer_name") ? "peer_name" : "peer_short", 12);
    printf(" [");
    s_jput(m, "state", 0);
    printf("] ");
    const json_t *text = json_object_get(m, "text");
    const char *t = json_string_value(text);
    s_safe(stdout, t ? t : "", t ? json_string_length(text) : 0, S_CONT, 0);
    printf("\n");
}

/* ---- channels ---- */

static void
s_print_chan_msg(const json_t *m)
{
    char when[32];
    s_time(s_int(m, "ts_ms"), when, sizeof when);
    printf("%s  ", when);
    if (json_is_true(json_object_get(m, "outgoing"))) {
        printf("%-8s", "you");
    } else {
        s_jput(m, "from_short", 8);
    }
    printf("  ");
    const json_t *text = json_object_get(m, "text");
    const char *t = json_string_value(text);
    s_safe(stdout, t ? t : "", t ? json_string_length(text) : 0, S_CONT, 0);
    if (strcmp(s_str(m, "state"), "queued") == 0) {
        printf("  [queued]");
    } else if (json_object_get(m, "of")) {
        printf("  [delivered %lld/%lld, read %lld/%lld]", (long long)s_int(m, "delivered"),
               (long long)s_int(m, "of"), (long long)s_int(m, "read"), (long long)s_int(m, "of"));
    }
    printf("\n");
}

static void
s_print_channel(const json_t *ch)
{
    printf("#");
    s_jput(ch, "name", 16);
    printf(" %3lld members  %4lld unread  epoch %lld  %s%s%s%s  ", (long long)s_int(ch, "members"),
           (long long)s_int(ch, "unread"), (long long)s_int(ch, "epoch"), s_str(ch, "history"),
           json_is_true(json_object_get(ch, "announce")) ? ", announce" : "",
           json_is_true(json_object_get(ch, "network")) ? ", network-wide" : "",
           strcmp(s_str(ch, "state"), "member") == 0 ? "" : ", left");
    s_jput(ch, "topic", 0);
    printf("\n");
    //  The last message, its first line cut to S_PREVIEW bytes (at a
    //  character's start), shown escaped like any peer text.
    const json_t *last = json_object_get(ch, "last");
    const char *t = json_string_value(json_object_get(last, "text"));
    if (t) {
        char when[32];
        s_time(s_int(last, "ts_ms"), when, sizeof when);
        printf("    last %s ", when);
        if (json_is_true(json_object_get(last, "outgoing"))) {
            printf("you");
        } else {
            s_jput(last, "from_short", 0);
        }
        size_t len = strcspn(t, "\n");
        bool cut = len > S_PREVIEW || t[len] != '\0';
        if (len > S_PREVIEW) {
            len = S_PREVIEW;
            while (len > 0 && ((unsigned char)t[len] & 0xC0) == 0x80) {
                len--;
            }
        }
        printf(": ");
        s_safe(stdout, t, len, NULL, 0);
        printf("%s\n", cut ? " ..." : "");
    }
}

static int
c_channel_create(cli_t *cli)
{
    const char *name = NULL, *topic = NULL, *history = NULL;
    bool announce = false, network_wide = false;
    for (int i = 1; i < cli->argc; i++) {
        if (strcmp(cli->argv[i], "--topic") == 0 && i + 1 < cli->argc) {
            topic = cli->argv[++i];
        } else if (strcmp(cli->argv[i], "--history") == 0 && i + 1 < cli->argc) {
            history = cli->argv[++i];
        } else if (strcmp(cli->argv[i], "--announce") == 0) {
            announce = true;
        } else if (strcmp(cli->argv[i], "--network") == 0) {
            network_wide = true;
        } else if (!name) {
            name = cli->argv[i];
        } else {
            return s_die(2, "channel create: unexpected '%s'", cli->argv[i]);
        }
    }
    if (!name) {
        return s_die(2, "usage: parley channel create NAME [--topic T]"
                        " [--history shared|from-join] [--announce] [--network]");
    }
    json_t *params =
        json_pack("{s:s, s:b, s:b}", "name", name, "announce", announce, "network", network_wide);
    if (params && topic) {
        json_object_set_new(params, "topic", json_string(topic));
    }
    if (params && history) {
        json_object_set_new(params, "history", json_string(history));
    }
    json_t *res = NULL;
    int code = s_fetch(cli, "channel.create", params, &res);
    if (code == 0 && res) {
        printf("created ");
        s_print_channel(res);
    }
    json_decref(res);
    return code;
}

static int
c_channel(cli_t *cli)
{
    const char *sub = cli->argc > 0 ? cli->argv[0] : "list";
    json_t *res = NULL;
    int code = 0;
    if (strcmp(sub, "create") == 0) {
        return c_channel_create(cli);
    }
    if (strcmp(sub, "list") == 0 && cli->argc <= 1) {
        code = s_fetch(cli, "channel.list", NULL, &res);
        size_t i;
        json_t *ch;
        json_array_foreach(json_object_get(res, "channels"), i, ch)
        {
            s_print_channel(ch);
        }
    } else if (strcmp(sub, "info") == 0 && cli->argc == 2) {
        code = s_fetch(cli, "channel.info", json_pack("{s:s}", "channel", cli->argv[1]), &res);
        if (code == 0 && res) {
            s_print_channel(res);
            size_t i;
            json_t *m;
            json_array_foreach(json_object_get(res, "member_list"), i, m)
            {
                printf("  ");
                s_jput(m, "short_id", 10);
                printf(" ");
                s_jput(m, "role", 0);
                printf("\n");
            }
        }
    } else if (strcmp(sub, "add") == 0 && cli->argc >= 3) {
        for (int i = 2; code == 0 && i < cli->argc; i++) {
            code = s_fetch(cli, "channel.add",
                           json_pack("{s:s, s:s}", "channel", cli->argv[1], "peer", cli->argv[i]),
                           &res);
            if (code == 0 && res) {
                printf("added %s: ", cli->argv[i]);
                s_print_channel(res);
            }
            json_decref(res);
            res = NULL;
        }
    } else if (strcmp(sub, "remove") == 0 && cli->argc == 3) {
        code =
            s_fetch(cli, "channel.remove",
                    json_pack("{s:s, s:s}", "channel", cli->argv[1], "peer", cli->argv[2]), &res);
        if (code == 0 && res) {
            printf("removed %s; a new key goes to the others: ", cli->argv[2]);
            s_print_channel(res);
        }
    } else if (strcmp(sub, "role") == 0 && cli->argc == 4) {
        code = s_fetch(cli, "channel.role",
                       json_pack("{s:s, s:s, s:s}", "channel", cli->argv[1], "peer", cli->argv[2],
                                 "role", cli->argv[3]),
                       &res);
        if (code == 0 && res) {
            printf("%s is %s now\n", cli->argv[2], cli->argv[3]);
        }
    } else if ((strcmp(sub, "leave") == 0 || strcmp(sub, "rekey") == 0) && cli->argc == 2) {
        char method[32];
        snprintf(method, sizeof method, "channel.%s", sub);
        code = s_fetch(cli, method, json_pack("{s:s}", "channel", cli->argv[1]), &res);
        if (code == 0 && res) {
            printf(strcmp(sub, "leave") == 0 ? "left " : "new epoch: ");
            s_print_channel(res);
        }
    } else if (strcmp(sub, "topic") == 0 && cli->argc == 3) {
        code =
            s_fetch(cli, "channel.topic",
                    json_pack("{s:s, s:s}", "channel", cli->argv[1], "topic", cli->argv[2]), &res);
        if (code == 0 && res) {
            s_print_channel(res);
        }
    } else {
        return s_die(2, "usage: parley channel create NAME [--topic T] [--history shared|from-join]"
                        " [--announce] | list | info NAME | add NAME PEER... | remove NAME PEER"
                        " | role NAME PEER admin|member|reader | leave NAME | rekey NAME"
                        " | topic NAME TEXT");
    }
    json_decref(res);
    return code;
}

static int
s_channel_send(cli_t *cli)
{
    json_t *res = NULL;
    int code =
        s_fetch(cli, "channel.send",
                json_pack("{s:s, s:s}", "channel", cli->argv[0], "text", cli->argv[1]), &res);
    if (code == 0 && res && strcmp(s_str(res, "state"), "queued") == 0) {
        printf("queued: it goes when the channel's new key comes\n");
    } else if (code == 0 && res) {
        printf("stored ");
        s_jput(res, "envelope_id", 0);
        printf("\n");
    }
    json_decref(res);
    return code;
}

static int
s_channel_history(cli_t *cli, const char *channel, long long limit)
{
    json_t *res = NULL;
    int code =
        s_fetch(cli, "channel.history",
                json_pack("{s:s, s:I}", "channel", channel, "limit", (json_int_t)limit), &res);
    if (code == 0 && res) {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(res, "messages"), i, m)
        {
            s_print_chan_msg(m);
        }
    }
    json_decref(res);
    return code;
}

static int
c_send(cli_t *cli)
{
    long long ttl = 0;
    if (cli->argc == 4 && strcmp(cli->argv[2], "--ttl") == 0) {
        char *end = NULL;
        errno = 0;
        ttl = strtoll(cli->argv[3], &end, 10);
        if (errno || *end || ttl <= 0 || ttl > 10ll * 365 * 86400) {
            return s_die(2, "--ttl wants a positive number of seconds, got '%s'", cli->argv[3]);
        }
    } else if (cli->argc != 2) {
        return s_die(2, "usage: parley send PEER|#CHANNEL TEXT [--ttl SECONDS]");
    }
    if (cli->argv[0][0] == '#') {
        if (ttl > 0) {
            return s_die(2, "--ttl is for direct messages");
        }
        return s_channel_send(cli);
    }
    json_t *res = NULL;
    json_t *params = json_pack("{s:s, s:s}", "peer", cli->argv[0], "text", cli->argv[1]);
    if (params && ttl > 0) {
        json_object_set_new(params, "ttl_ms", json_integer((json_int_t)(ttl * 1000)));
    }
    int code = s_fetch(cli, "send", params, &res);
    if (code != 0 || !res) {
        return code;
    }
    if (strcmp(s_str(res, "state"), "queued") == 0) {
        printf("queued ");
        s_jput(res, "msg_id", 0);
        printf(" (waiting for the peer's prekey; sent when it is online)\n");
    } else {
        printf("stored ");
        s_jput(res, "envelope_id", 0);
        printf("\n");
    }
    json_decref(res);
    return 0;
}

static int
c_read(cli_t *cli)
{
    if (cli->argc != 1) {
        return s_die(2, "usage: parley read PEER|#CHANNEL");
    }
    json_t *res = NULL;
    bool chan = cli->argv[0][0] == '#';
    int code = chan
                   ? s_fetch(cli, "channel.read", json_pack("{s:s}", "channel", cli->argv[0]), &res)
                   : s_fetch(cli, "read", json_pack("{s:s}", "peer", cli->argv[0]), &res);
    if (code != 0 || !res) {
        return code;
    }
    printf("%lld marked read%s\n", (long long)json_integer_value(json_object_get(res, "marked")),
           json_is_true(json_object_get(res, "receipts")) ? "" : " (read receipts are off)");
    json_decref(res);
    return 0;
}

static int
c_history(cli_t *cli)
{
    const char *peer = NULL;
    long long limit = 50;
    for (int i = 0; i < cli->argc; i++) {
        if (strcmp(cli->argv[i], "--limit") == 0 && i + 1 < cli->argc) {
            char *end = NULL;
            errno = 0;
            limit = strtoll(cli->argv[++i], &end, 10);
            if (errno || *end || limit < 0) {
                return s_die(2, "--limit wants a number, got '%s'", cli->argv[i]);
            }
        } else if (!peer) {
            peer = cli->argv[i];
        } else {
            return s_die(2, "history: unexpected '%s'", cli->argv[i]);
        }
    }
    if (!peer) {
        return s_die(2, "usage: parley history PEER|#CHANNEL [--limit N]");
    }
    if (peer[0] == '#') {
        return s_channel_history(cli, peer, limit > 1000 ? 1000 : limit);
    }
    //  The node answers at most a page (1000 messages, fewer when they are
    //  long) per call: page back from the newest with `before` (the oldest
    //  msg_id so far) until LIMIT are in (0: all) or a page is empty.
    json_t *res = json_array();
    const char *cursor = NULL;
    char cur[64];
    for (;;) {
        size_t want = 1000;
        if (limit > 0 && (long long)json_array_size(res) + (long long)want > limit) {
            want = (size_t)(limit - (long long)json_array_size(res));
        }
        if (want == 0) {
            break;
        }
        json_t *params = json_pack("{s:s, s:I}", "peer", peer, "limit", (json_int_t)want);
        if (cursor) {
            json_object_set_new(params, "before", json_string(cursor));
        }
        json_t *page = NULL;
        int code = s_call(cli, "history", params, &page);
        if (code != 0 || !json_is_array(page)) {
            json_decref(page);
            json_decref(res);
            return code ? code : 1;
        }
        size_t got = json_array_size(page);
        if (got == 0) {
            json_decref(page);
            break;
        }
        const char *oldest = s_str(json_array_get(page, 0), "msg_id");
        if (cursor && strcmp(oldest, cursor) == 0) {
            json_decref(page); // a node that does not know `before`: one page is all
            break;
        }
        snprintf(cur, sizeof cur, "%s", oldest);
        cursor = cur;
        json_array_extend(page, res); // older page first: oldest first overall
        json_decref(res);
        res = page;
    }
    if (cli->json) {
        s_print_json(res);
        json_decref(res);
        return 0;
    }
    size_t i;
    json_t *m;
    json_array_foreach(res, i, m)
    {
        s_print_msg(m);
    }
    json_decref(res);
    return 0;
}

static int
c_watch(cli_t *cli)
{
    client_t *client = NULL;
    int code = s_connect(cli, &client);
    if (code != 0) {
        return code;
    }
    json_t *res = NULL;
    char *err = NULL;
    if (client_call(client, "subscribe", NULL, &res, &err) != PARLEY_OK) {
        s_error(err ? err : "subscribe failed");
        free(err);
        client_destroy(&client);
        return 1;
    }
    json_decref(res);
    for (;;) {
        json_t *note = NULL;
        int rc = client_recv(client, -1, &note);
        if (rc != PARLEY_OK) {
            client_destroy(&client);
            fprintf(stderr, "parley: the daemon went away\n");
            return 1;
        }
        const char *method = s_str(note, "method");
        json_t *p = json_object_get(note, "params");
        if (cli->json) {
            char *text = json_dumps(note, JSON_COMPACT);
            if (text) {
                puts(text);
                free(text);
            }
        } else if (strcmp(method, "message") == 0) {
            s_print_msg(p);
        } else if (strcmp(method, "delivery") == 0) {
            printf("delivery ");
            s_jput(p, "envelope_id", 0);
            printf(" -> ");
            s_jput(p, "peer_short", 0);
            printf(": ");
            s_jput(p, "state", 0);
            printf("\n");
        } else if (strcmp(method, "peer") == 0) {
            printf("peer ");
            s_jput(p, "short_id", 0);
            printf(" ");
            s_jput(p, "state", 0);
            if (*s_str(p, "reason")) {
                printf(": ");
                s_jput(p, "reason", 0);
            }
            printf("\n");
        } else if (strcmp(method, "network") == 0) {
            //  One roster event: "network remove by abcdefgh -> ijklmnop".
            printf("network ");
            s_jput(p, "type", 0);
            printf(" by ");
            s_who(p, "author_short", "author", NULL);
            if (*s_str(p, "target")) {
                printf(" -> ");
                s_who(p, "target_short", "target", NULL);
            }
            printf("%s\n", json_is_false(json_object_get(p, "applied")) ? " (void)" : "");
        } else if (strcmp(method, "channel.message") == 0) {
            printf("#");
            s_jput(p, "name", 0);
            printf(" ");
            s_print_chan_msg(p);
        } else if (strcmp(method, "channel.update") == 0) {
            printf("#");
            s_jput(p, "name", 0);
            if (*s_str(p, "state")) {
                printf(" %s\n", strcmp(s_str(p, "state"), "joined") == 0 ? "joined" : "left");
            } else {
                printf(" topic: ");
                s_jput(p, "topic", 0);
                printf("\n");
            }
        } else if (strcmp(method, "channel.member") == 0) {
            //  "#ops abcdefgh is in it, as admin" / "#ops abcdefgh is out of it"
            printf("#");
            s_jput(p, "name", 0);
            printf(" ");
            s_who(p, "member_short", "member", NULL);
            if (strcmp(s_str(p, "role"), "gone") == 0) {
                printf(" is out of it\n");
            } else {
                printf(" is in it, as ");
                s_jput(p, "role", 0);
                printf("\n");
            }
        } else if (strcmp(method, "channel.receipt") == 0) {
            printf("#");
            s_jput(p, "name", 0);
            printf(" %s up to %lld by ", s_str(p, "status"), (long long)s_int(p, "up_to_seq"));
            s_jput(p, "member", 8);
            printf("\n");
        } else if (strcmp(method, "warning") == 0) {
            printf("WARNING ");
            s_jput(p, "kind", 0);
            printf(" ");
            s_jput(p, "contact", 0);
            printf("\n");
        }
        fflush(stdout);
        json_decref(note);
    }
}

static int
c_peers_forget(cli_t *cli)
{
    json_t *res = NULL;
    int code = s_fetch(cli, "peers.forget", json_pack("{s:s}", "peer", cli->argv[1]), &res);
    if (code != 0 || !res) {
        return code;
    }
    printf("forgot ");
    s_jput(res, "id", 0);
    if (json_is_true(json_object_get(res, "contact"))) {
        printf(" (still a contact: `parley contacts remove NAME` removes that)");
    }
    printf("\n");
    json_decref(res);
    return 0;
}

static int
c_peers(cli_t *cli)
{
    if (cli->argc == 2 && strcmp(cli->argv[0], "forget") == 0) {
        return c_peers_forget(cli);
    }
    if (cli->argc != 0) {
        return s_die(2, "usage: parley peers [forget PEER]");
    }
    json_t *res = NULL;
    int code = s_fetch(cli, "peers", NULL, &res);
    if (code != 0 || !res) {
        return code;
    }
    size_t i;
    json_t *p;
    json_array_foreach(res, i, p)
    {
        char since[32] = "-", seen[32] = "-";
        if (s_int(p, "connected_since")) {
            s_time(s_int(p, "connected_since"), since, sizeof since);
        }
        if (s_int(p, "last_seen")) {
            s_time(s_int(p, "last_seen"), seen, sizeof seen);
        }
        bool online = json_is_true(json_object_get(p, "online"));
        s_jput(p, "id", 0);
        printf("  ");
        s_jput(p, "short_id", 8);
        printf(" %-7s since %s  last seen %s  ", online ? "online" : "offline", since, seen);
        s_jput(p, "endpoint", 0);
        printf("  ");
        s_jput(p, "name", 0);
        if (!online) {
            s_jput(p, "last_error", 0);
        }
        printf("\n");
    }
    json_decref(res);
    return 0;
}

static void
s_print_contact(const json_t *c)
{
    s_jput(c, "name", 16);
    printf(" ");
    s_jput(c, "id", 0);
    printf(" %s\n", json_is_true(json_object_get(c, "verified")) ? "verified" : "unverified");
}

static int
c_contacts(cli_t *cli)
{
    const char *sub = cli->argc > 0 ? cli->argv[0] : "list";
    json_t *res = NULL;
    int code;
    if (strcmp(sub, "add") == 0 && (cli->argc == 3 || cli->argc == 4)) {
        bool replace = cli->argc == 4 && strcmp(cli->argv[3], "--replace") == 0;
        if (cli->argc == 4 && !replace) {
            return s_die(2, "contacts add: unexpected '%s'", cli->argv[3]);
        }
        code = s_fetch(cli, "contacts.add",
                       json_pack("{s:s, s:s, s:b}", "id", cli->argv[1], "name", cli->argv[2],
                                 "replace", replace),
                       &res);
    } else if (strcmp(sub, "list") == 0 && cli->argc <= 1) {
        code = s_fetch(cli, "contacts.list", NULL, &res);
    } else if (strcmp(sub, "remove") == 0 && cli->argc == 2) {
        code = s_fetch(cli, "contacts.remove", json_pack("{s:s}", "name", cli->argv[1]), &res);
    } else if (strcmp(sub, "verify") == 0 && cli->argc == 2) {
        code = s_fetch(cli, "contacts.verify", json_pack("{s:s}", "peer", cli->argv[1]), &res);
    } else {
        return s_die(2, "usage: parley contacts add ID NAME [--replace] | list | remove NAME "
                        "| verify PEER");
    }
    if (code != 0 || !res) {
        return code;
    }
    if (json_is_array(res)) {
        size_t i;
        json_t *c;
        json_array_foreach(res, i, c)
        {
            s_print_contact(c);
        }
    } else if (strcmp(sub, "remove") == 0) {
        printf("removed ");
        s_put(cli->argv[1], 0);
        printf("\n");
    } else {
        s_print_contact(res);
    }
    json_decref(res);
    return 0;
}

static int
c_safety(cli_t *cli)
{
    if (cli->argc != 1) {
        return s_die(2, "usage: parley safety PEER");
    }
    json_t *res = NULL;
    int code = s_fetch(cli, "safety", json_pack("{s:s}", "peer", cli->argv[0]), &res);
    if (code != 0 || !res) {
        return code;
    }
    const char *d = s_str(res, "safety_number");
    //  Twelve groups of five, as people read them aloud to each other.
    for (size_t i = 0; i < 60 && d[i]; i += 5) {
        printf("%.5s%s", d + i, i == 25 ? "\n" : i == 55 ? "\n" : " ");
    }
    printf("%s\n", json_is_true(json_object_get(res, "verified")) ? "verified" : "not verified");
    json_decref(res);
    return 0;
}

static int
c_status(cli_t *cli)
{
    json_t *res = NULL;
    int code = s_fetch(cli, "status", NULL, &res);
    if (code != 0 || !res) {
        return code;
    }
    json_t *log = json_object_get(res, "log");
    json_t *peers = json_object_get(res, "peers");
    printf("id:        ");
    s_jput(res, "id", 0);
    printf("\nendpoint:  ");
    s_put(json_string_value(json_array_get(json_object_get(res, "endpoints"), 0)), 0);
    printf("\npeers:     %" PRIu64 " online, %" PRIu64 " known\n", s_int(peers, "online"),
           s_int(peers, "known"));
    printf("log:       %" PRIu64 " envelopes, %" PRIu64 " messages, %" PRIu64 " in outbox, %" PRIu64
           " queued, %" PRIu64 " bytes\n",
           s_int(log, "envelopes"), s_int(log, "messages"), s_int(log, "outbox"),
           s_int(log, "queued"), s_int(log, "db_bytes"));
    json_t *rec = json_object_get(res, "recovery");
    const char *rstate = json_string_value(json_object_get(rec, "state"));
    if (rstate && strcmp(rstate, "none") != 0) {
        time_t at = (time_t)(s_int(rec, "lost_ms") / 1000);
        struct tm tm;
        char when[32] = "?";
        if (gmtime_r(&at, &tm) && strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
            when[0] = '\0';
        }
        printf("database:  lost, found at %s; ", when);
        s_put(rstate, 0);
        printf(", %" PRIu64 " envelopes of ours recovered from peers%s\n",
               s_int(rec, "envelopes_recovered"),
               strcmp(rstate, "recovering") == 0 ? " (messages you send wait, queued)" : "");
    }
    printf("rejected:");
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(res, "rejected"), key, v)
    {
        printf(" ");
        s_put(key, 0);
        printf("=%" PRIu64, (uint64_t)json_integer_value(v));
    }
    printf("\n");
    json_decref(res);
    return 0;
}

static void
s_print_state(const char *what, const json_t *d)
{
    printf("%-10s ", what);
    s_jput(d, "state", 5);
    printf(" ");
    s_jput(d, "detail", 0);
    printf("\n");
}

static int
c_doctor(cli_t *cli)
{
    if (cli->argc > 1) {
        return s_die(2, "usage: parley doctor [PEER]");
    }
    json_t *params = cli->argc == 1 ? json_pack("{s:s}", "peer", cli->argv[0]) : NULL;
    json_t *res = NULL;
    int code = s_fetch(cli, "doctor", params, &res);
    if (code != 0 || !res) {
        return code;
    }
    json_t *d = json_object_get(res, "discovery");
    json_t *m = json_object_get(d, "mdns");
    printf("node       ");
    s_jput(res, "id", 0);
    printf("\nendpoint   ");
    s_put(json_string_value(json_array_get(json_object_get(res, "endpoints"), 0)), 0);
    printf("\n");
    s_print_state("host-local", json_object_get(d, "local"));
    s_print_state("mdns", m);
    printf("published  ");
    s_jput(m, "instance", 0);
    printf(".");
    s_jput(m, "service", 0);
    printf("\ninterfaces");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(m, "interfaces"), i, v)
    {
        printf(" ");
        s_jput(v, "name", 0);
        printf(" (");
        s_jput(v, "address", 0);
        printf(")");
    }
    printf("\n");
    json_array_foreach(json_object_get(res, "peers"), i, v)
    {
        printf("peer       ");
        s_jput(v, "short_id", 0);
        printf("  ");
        s_jput(v, "source", 8);
        printf(" %-7s ", json_is_true(json_object_get(v, "online")) ? "online" : "offline");
        s_jput(v, "reason", 0);
        printf("\n");
    }
    json_t *p = json_object_get(res, "peer");
    if (p) {
        printf("\n");
        s_jput(p, *s_str(p, "id") ? "id" : "peer", 0);
        printf(": ");
        s_jput(p, "reason", 0);
        printf("\n");
    }
    json_decref(res);
    return 0;
}

/* ---- private networks (proto/SPEC.md §17, §18) ----
 *
 *  The node keeps the roster and enforces it; these commands only ask. Every
 *  name, label and reason in a roster event was written by some member and
 *  is shown through s_safe like any other peer text. An invite code is a
 *  bearer token (SPEC §18.4): the CLI prints it where it was asked for and
 *  nowhere else, and says so.
 */

//  How long `parley join` waits for the outcome unless --timeout says.
#define S_JOIN_TIMEOUT_S 60
//  The longest --expires: ten years, as for --ttl; past that a number is a
//  mistake, not a plan.
#define S_DURATION_MAX_MS (10ull * 365 * 86400 * 1000)

/*  A DURATION as `parley invite --expires` takes it: decimal digits and one
 *  unit, s, m, h or d ("90s", "30m", "24h", "7d"); nothing else, no sign, no
 *  space, no fraction, not zero, at most S_DURATION_MAX_MS. */
static bool
s_duration_ms(const char *s, uint64_t *ms)
{
    uint64_t n = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (n > S_DURATION_MAX_MS / 10) {
            return false;
        }
        n = n * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0 || s[i] == '\0' || s[i + 1] != '\0' || n == 0) {
        return false;
    }
    uint64_t unit = s[i] == 's' ? 1000 : s[i] == 'm' ? 60000 : s[i] == 'h' ? 3600000 : 0;
    unit = s[i] == 'd' ? 86400000 : unit;
    if (unit == 0 || n > S_DURATION_MAX_MS / unit) {
        return false;
    }
    *ms = n * unit;
    return true;
}

/*  A whole decimal in lo..hi, as the other numeric options read one. */
static bool
s_number(const char *s, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || errno || *end || v < lo || v > hi) {
        return false;
    }
    *out = v;
    return true;
}

static bool
s_is_role(const char *s)
{
    return strcmp(s, "member") == 0 || strcmp(s, "admin") == 0;
}

static void
s_print_network(const json_t *n)
{
    const char *mode = s_str(n, "mode");
    if (strcmp(mode, "open") == 0) {
        printf("open mode: this node is in no network (any node may connect; "
               "`parley network create NAME` or `parley join CODE` changes that)\n");
        return;
    }
    if (strcmp(mode, "joining") == 0) {
        printf("joining network ");
        s_jput(n, "network_id", 0);
        printf(", invited by ");
        s_jput(n, "inviter", 0);
        printf(": ");
        s_jput(n, "state", 0);
        if (*s_str(n, "error")) {
            printf(": ");
            s_jput(n, "error", 0);
        }
        printf("\n");
        return;
    }
    printf("network    ");
    s_jput(n, "name", 0);
    printf("\nid         ");
    s_jput(n, "id", 0);
    printf("\nfounder    ");
    s_jput(n, "founder", 0);
    printf("\nyou        ");
    s_jput(n, "role", 0);
    uint64_t events = s_int(n, "events"), pending = s_int(n, "pending");
    printf("\nroster     epoch %" PRIu64 ", %" PRIu64 " event%s", s_int(n, "epoch"), events,
           events == 1 ? "" : "s");
    if (pending > 0) {
        //  Events whose parents have not arrived yet: sync brings them.
        printf(", %" PRIu64 " waiting for the events they follow", pending);
    }
    printf("\n");
    const json_t *members = json_object_get(n, "members");
    printf("members    %zu\n", json_array_size(members));
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m)
    {
        char when[32] = "-";
        if (s_int(m, "added_ms")) {
            s_time(s_int(m, "added_ms"), when, sizeof when);
        }
        printf("  ");
        s_jput(m, "short_id", 8);
        printf("  ");
        s_jput(m, "role", 6);
        printf(" %-5s ", json_is_true(json_object_get(m, "relay")) ? "relay" : "");
        s_jput(m, "name", 16);
        printf(" added %s by ", when);
        s_who(m, "added_by_short", "added_by", NULL);
        if (json_is_true(json_object_get(m, "via_invite"))) {
            printf(" (invite)");
        }
        printf("\n");
    }
}

static void
s_print_event_detail(const json_t *d)
{
    const json_t *v;
    if (*s_str(d, "role")) {
        printf(" role=");
        s_jput(d, "role", 0);
    }
    if (s_int(d, "expires_ms")) {
        char when[32];
        s_time(s_int(d, "expires_ms"), when, sizeof when);
        printf(" expires=%s", when);
    }
    if (s_int(d, "uses")) {
        printf(" uses=%" PRIu64, s_int(d, "uses"));
    }
    if (*s_str(d, "label")) {
        printf(" label=\"");
        s_jput(d, "label", 0);
        printf("\"");
    }
    if (*s_str(d, "reason")) {
        printf(" reason=\"");
        s_jput(d, "reason", 0);
        printf("\"");
    }
    if ((v = json_object_get(d, "on")) != NULL && json_is_boolean(v)) {
        printf(" %s", json_is_true(v) ? "on" : "off");
    }
}

static int
c_network_log(cli_t *cli)
{
    long long limit = 100;
    for (int i = 1; i < cli->argc; i++) {
        if (strcmp(cli->argv[i], "--limit") == 0 && i + 1 < cli->argc) {
            if (!s_number(cli->argv[++i], 0, INT64_MAX, &limit)) {
                return s_die(2, "--limit wants a number, got '%s'", cli->argv[i]);
            }
        } else {
            return s_die(2, "usage: parley network log [--limit N]");
        }
    }
    json_t *res = NULL;
    int code = s_fetch(cli, "network.log", json_pack("{s:I}", "limit", (json_int_t)limit), &res);
    if (code != 0 || !res) {
        return code;
    }
    size_t i;
    json_t *e;
    json_array_foreach(res, i, e)
    {
        char when[32];
        s_time(s_int(e, "ts_ms"), when, sizeof when);
        printf("%s  ", when);
        s_jput(e, "type", 6);
        printf(" by ");
        s_who(e, "author_short", "author", "author_name");
        if (*s_str(e, "target")) {
            printf(" -> ");
            s_who(e, "target_short", "target", "target_name");
        }
        s_print_event_detail(json_object_get(e, "detail"));
        if (!json_is_true(json_object_get(e, "applied"))) {
            printf("  [void: ");
            s_jput(e, "reason", 0);
            printf("]");
        }
        printf("\n");
    }
    json_decref(res);
    return 0;
}

static int
c_network(cli_t *cli)
{
    const char *sub = cli->argc > 0 ? cli->argv[0] : "show";
    json_t *res = NULL;
    int code;
    if (strcmp(sub, "log") == 0) {
        return c_network_log(cli);
    }
    if (strcmp(sub, "create") == 0 && cli->argc >= 2) {
        const char *name = NULL, *my_name = NULL;
        for (int i = 1; i < cli->argc; i++) {
            if (strcmp(cli->argv[i], "--my-name") == 0 && i + 1 < cli->argc) {
                my_name = cli->argv[++i];
            } else if (!name) {
                name = cli->argv[i];
            } else {
                return s_die(2, "network create: unexpected '%s'", cli->argv[i]);
            }
        }
        if (!name) {
            return s_die(2, "usage: parley network create NAME [--my-name N]");
        }
        json_t *params = json_pack("{s:s}", "name", name);
        if (params && my_name) {
            json_object_set_new(params, "my_name", json_string(my_name));
        }
        code = s_fetch(cli, "network.create", params, &res);
    } else if (strcmp(sub, "show") == 0 && cli->argc <= 1) {
        code = s_fetch(cli, "network.show", NULL, &res);
    } else if (strcmp(sub, "leave") == 0 && cli->argc == 1) {
        code = s_fetch(cli, "network.leave", NULL, &res);
        if (code == 0 && res) {
            printf("left network ");
            s_jput(res, "id", 0);
            printf("; this node is in open mode again\n");
            json_decref(res);
        }
        return code;
    } else {
        return s_die(2, "usage: parley network create NAME [--my-name N] | show | "
                        "log [--limit N] | leave");
    }
    if (code != 0 || !res) {
        return code;
    }
    s_print_network(res);
    json_decref(res);
    return 0;
}

static int
c_invite_list(cli_t *cli)
{
    if (cli->argc != 1) {
        return s_die(2, "usage: parley invite list");
    }
    json_t *res = NULL;
    int code = s_fetch(cli, "invite.list", NULL, &res);
    if (code != 0 || !res) {
        return code;
    }
    size_t i;
    json_t *v;
    json_array_foreach(res, i, v)
    {
        char when[32] = "-";
        if (s_int(v, "expires_ms")) {
            s_time(s_int(v, "expires_ms"), when, sizeof when);
        }
        const char *state = json_is_true(json_object_get(v, "revoked")) ? "revoked"
                            : json_is_true(json_object_get(v, "live"))  ? "live"
                            : s_int(v, "used") >= s_int(v, "uses")      ? "used up"
                                                                        : "expired";
        s_jput(v, "invite_id", 0);
        printf("  %-7s ", state);
        s_jput(v, "role", 6);
        printf(" used %" PRIu64 "/%" PRIu64 "  expires %s  by ", s_int(v, "used"), s_int(v, "uses"),
               when);
        s_who(v, "author_short", "author", NULL);
        if (*s_str(v, "label")) {
            printf("  \"");
            s_jput(v, "label", 0);
            printf("\"");
        }
        printf("\n");
    }
    json_decref(res);
    return 0;
}

static int
c_invite_revoke(cli_t *cli)
{
    if (cli->argc != 2) {
        return s_die(2, "usage: parley invite revoke ID|CODE");
    }
    json_t *res = NULL;
    int code = s_fetch(cli, "invite.revoke", json_pack("{s:s}", "invite", cli->argv[1]), &res);
    if (code != 0 || !res) {
        return code;
    }
    printf("revoked invite ");
    s_jput(res, "invite_id", 0);
    printf("\n");
    json_decref(res);
    return 0;
}

static int
c_invite(cli_t *cli)
{
    if (cli->argc > 0 && strcmp(cli->argv[0], "list") == 0) {
        return c_invite_list(cli);
    }
    if (cli->argc > 0 && strcmp(cli->argv[0], "revoke") == 0) {
        return c_invite_revoke(cli);
    }
    static const char usage[] = "usage: parley invite [--name LABEL] [--role member|admin] "
                                "[--expires DURATION] [--uses N] [--qr] | list | revoke ID|CODE";
    const char *label = NULL, *role = "member";
    uint64_t expires = 86400000;
    long long uses = 1;
    bool qr = false;
    for (int i = 0; i < cli->argc; i++) {
        const char *a = cli->argv[i];
        bool more = i + 1 < cli->argc;
        if (strcmp(a, "--name") == 0 && more) {
            label = cli->argv[++i];
        } else if (strcmp(a, "--role") == 0 && more) {
            role = cli->argv[++i];
            if (!s_is_role(role)) {
                return s_die(2, "--role wants member or admin, got '%s'", role);
            }
        } else if (strcmp(a, "--expires") == 0 && more) {
            if (!s_duration_ms(cli->argv[++i], &expires)) {
                return s_die(2,
                             "--expires wants a duration such as 90s, 30m, 24h or 7d "
                             "(at most 10 years), got '%s'",
                             cli->argv[i]);
            }
        } else if (strcmp(a, "--uses") == 0 && more) {
            if (!s_number(cli->argv[++i], 1, ROSTER_INVITE_USES_MAX, &uses)) {
                return s_die(2, "--uses wants a number from 1 to %u, got '%s'",
                             ROSTER_INVITE_USES_MAX, cli->argv[i]);
            }
        } else if (strcmp(a, "--qr") == 0) {
            qr = true;
        } else {
            return s_die(2, "%s", usage);
        }
    }
    json_t *params = json_pack("{s:s, s:I, s:I}", "role", role, "expires_ms", (json_int_t)expires,
                               "uses", (json_int_t)uses);
    if (params && label) {
        json_object_set_new(params, "label", json_string(label));
    }
    json_t *res = NULL;
    int code = s_fetch(cli, "invite.create", params, &res);
    if (code != 0 || !res) {
        return code;
    }
    //  The code alone on stdout, so that `CODE=$(parley invite)` takes it
    //  whole; what a person should know goes to stderr.
    s_jput(res, "code", 0);
    printf("\n");
    int ret = 0;
    //  The code is base32 and the prefix, which the decoder reads in either
    //  case: qr_print_text folds it to the QR alphanumeric set, a smaller
    //  symbol with bigger modules for a phone camera (tools/qr.h).
    if (qr && qr_print_text(stdout, s_str(res, "code")) != 0) {
        fflush(stdout);
        fprintf(stderr, "parley: cannot draw the QR code; the line above is the whole code\n");
        ret = 1;
    }
    char when[32] = "?";
    if (s_int(res, "expires_ms")) {
        s_time(s_int(res, "expires_ms"), when, sizeof when);
    }
    uint64_t n = s_int(res, "uses");
    fflush(stdout);
    fprintf(stderr, "invite ");
    s_safe(stderr, s_str(res, "invite_id"), strlen(s_str(res, "invite_id")), NULL, 0);
    fprintf(stderr, ": joins as ");
    s_safe(stderr, s_str(res, "role"), strlen(s_str(res, "role")), NULL, 0);
    fprintf(stderr, ", valid until %s, %" PRIu64 " use%s.\n", when, n, n == 1 ? "" : "s");
    fprintf(stderr, "The code is a bearer token: whoever holds it can join this network, under\n"
                    "any name, until it is used up, expires or is revoked (parley invite revoke\n"
                    "ID). Hand it over only on a channel you trust as much as the network.\n");
    json_decref(res);
    return ret;
}

/*  What a `join` still in progress after the timeout is waiting for. */
static const char *
s_join_waiting(const char *state)
{
    if (strcmp(state, "dialling") == 0) {
        return "no member answered";
    }
    if (strcmp(state, "proving") == 0) {
        return "a member answered, but none confirmed the join";
    }
    return "the join did not finish";
}

/*  `parley join CODE`: the node dials what the code names and proves the
 *  secret on its own; the call returns at once. The outcome shows in
 *  network.show, polled every 200 ms on the same connection. A code given
 *  as "-" is read from stdin, so it need not sit in argv (ps, shell history). */
static int
c_join(cli_t *cli)
{
    const char *code_arg = NULL, *name = NULL;
    long long timeout = S_JOIN_TIMEOUT_S;
    for (int i = 0; i < cli->argc; i++) {
        if (strcmp(cli->argv[i], "--name") == 0 && i + 1 < cli->argc) {
            name = cli->argv[++i];
        } else if (strcmp(cli->argv[i], "--timeout") == 0 && i + 1 < cli->argc) {
            if (!s_number(cli->argv[++i], 1, 86400, &timeout)) {
                return s_die(2, "--timeout wants a number of seconds (1..86400), got '%s'",
                             cli->argv[i]);
            }
        } else if (!code_arg) {
            code_arg = cli->argv[i];
        } else {
            return s_die(2, "usage: parley join CODE|- [--name N] [--timeout S]");
        }
    }
    if (!code_arg) {
        return s_die(2, "usage: parley join CODE|- [--name N] [--timeout S]");
    }
    //  The longest code is 2040 characters (SPEC §18.3); room for wrapping.
    char buf[4096];
    const char *code_text = code_arg;
    if (strcmp(code_arg, "-") == 0) {
        size_t len = fread(buf, 1, sizeof buf - 1, stdin);
        buf[len] = '\0';
        code_text = buf;
    }
    json_t *params = json_pack("{s:s}", "code", code_text);
    sodium_memzero(buf, sizeof buf);
    if (!params) {
        return s_die(2, "that is not an invite code (not even text)");
    }
    if (params && name) {
        json_object_set_new(params, "name", json_string(name));
    }
    client_t *client = NULL;
    int code = s_connect(cli, &client);
    if (code != 0) {
        json_decref(params);
        return code;
    }
    json_t *res = NULL;
    char *err = NULL;
    if (client_call(client, "join", params, &res, &err) != PARLEY_OK) {
        s_error(err ? err : "join failed");
        free(err);
        client_destroy(&client);
        return 1;
    }
    json_decref(res);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        json_t *show = NULL;
        if (client_call(client, "network.show", NULL, &show, &err) != PARLEY_OK) {
            s_error(err ? err : "network.show failed");
            free(err);
            client_destroy(&client);
            return 1;
        }
        const char *mode = s_str(show, "mode");
        const char *state = s_str(show, "state");
        //  The node is in the network as soon as a member took its JOIN;
        //  the roster (the CREATE and the invite its JOIN names) arrives by
        //  sync right after, and until it has, the node's own fold does not
        //  list it yet (role "none"): done when it does.
        const char *role = s_str(show, "role");
        bool listed = strcmp(role, "member") == 0 || strcmp(role, "admin") == 0;
        if (strcmp(mode, "network") == 0 && listed) {
            client_destroy(&client);
            if (cli->json) {
                s_print_json(show);
            } else {
                printf("joined ");
                s_jput(show, "name", 0);
                printf(" as ");
                s_jput(show, "role", 0);
                printf(" (%zu members)\n", json_array_size(json_object_get(show, "members")));
            }
            json_decref(show);
            return 0;
        }
        if (strcmp(mode, "joining") == 0 && strcmp(state, "failed") == 0) {
            client_destroy(&client);
            const char *why = s_str(show, "error");
            fputs("parley: join failed: ", stderr);
            s_safe(stderr, why, strlen(why), NULL, 0);
            fputc('\n', stderr);
            json_decref(show);
            return 1;
        }
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        long long ms =
            (long long)(t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms >= timeout * 1000) {
            client_destroy(&client);
            if (strcmp(mode, "network") == 0) {
                fprintf(stderr,
                        "parley: a member took the join, but the roster has not arrived within "
                        "%lld s; the node keeps syncing (see parley network show)\n",
                        timeout);
            } else if (strcmp(mode, "joining") == 0) {
                fprintf(stderr,
                        "parley: %s within %lld s; the node keeps trying (see parley network "
                        "show)\n",
                        s_join_waiting(state), timeout);
            } else {
                fprintf(stderr, "parley: the node is no longer joining (see parley network "
                                "show)\n");
            }
            json_decref(show);
            return 1;
        }
        json_decref(show);
        struct timespec pause = { 0, 200 * 1000 * 1000 };
        nanosleep(&pause, NULL);
    }
}

static int
c_member(cli_t *cli)
{
    json_t *res = NULL;
    int code;
    bool remove = cli->argc >= 2 && strcmp(cli->argv[0], "remove") == 0;
    if (remove && (cli->argc == 2 || (cli->argc == 4 && strcmp(cli->argv[2], "--reason") == 0))) {
        json_t *params = json_pack("{s:s}", "peer", cli->argv[1]);
        if (params && cli->argc == 4) {
            json_object_set_new(params, "reason", json_string(cli->argv[3]));
        }
        code = s_fetch(cli, "member.remove", params, &res);
    } else if (cli->argc == 3 && strcmp(cli->argv[0], "role") == 0 && s_is_role(cli->argv[2])) {
        code = s_fetch(cli, "member.role",
                       json_pack("{s:s, s:s}", "peer", cli->argv[1], "role", cli->argv[2]), &res);
    } else {
        return s_die(2, "usage: parley member remove PEER [--reason TEXT] | "
                        "role PEER admin|member");
    }
    if (code != 0 || !res) {
        return code;
    }
    if (remove) {
        printf("removed ");
        s_jput(res, "id", 0);
    } else {
        s_jput(res, "id", 0);
        printf(" is now ");
        s_jput(res, "role", 0);
    }
    printf("\n");
    json_decref(res);
    return 0;
}

static int
c_relay(cli_t *cli)
{
    bool add = cli->argc == 2 && strcmp(cli->argv[0], "add") == 0;
    if (cli->argc != 2 || (!add && strcmp(cli->argv[0], "remove") != 0)) {
        return s_die(2, "usage: parley relay add PEER | remove PEER");
    }
    json_t *res = NULL;
    int code =
        s_fetch(cli, "relay.set", json_pack("{s:s, s:b}", "peer", cli->argv[1], "on", add), &res);
    if (code != 0 || !res) {
        return code;
    }
    s_jput(res, "id", 0);
    printf(json_is_true(json_object_get(res, "relay")) ? " is a relay of the network\n"
                                                       : " is no longer a relay\n");
    json_decref(res);
    return 0;
}

static int
c_chat(cli_t *cli)
{
    return chat_run(cli->home, cli->argc, cli->argv);
}

int
main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        return s_die(1, "libsodium failed to initialise");
    }
    cli_t cli;
    memset(&cli, 0, sizeof cli);
    const char *home_flag = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--home") == 0 && i + 1 < argc) {
            home_flag = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            cli.json = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            s_usage(stdout);
            return 0;
        } else {
            s_usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        s_usage(stderr);
        return 2;
    }
    const char *cmd = argv[i++];
    //  --json may also follow the command ("parley peers --json").
    char **rest = argv + i;
    int n = 0;
    for (int k = i; k < argc; k++) {
        if (strcmp(argv[k], "--json") == 0) {
            cli.json = true;
        } else if (strcmp(argv[k], "--home") == 0 && k + 1 < argc) {
            home_flag = argv[++k];
        } else {
            rest[n++] = argv[k];
        }
    }
    cli.argv = rest;
    cli.argc = n;
    if (home_resolve(home_flag, cli.home, sizeof cli.home) != PARLEY_OK) {
        return s_die(2, "cannot tell where the home is: pass --home DIR or set PARLEY_HOME");
    }
    //  Strict modes, as parleyd has them, for every command: the CLI reads
    //  the key and talks to api.sock, and neither may be someone else's. A
    //  missing home is left to the command ("no identity", "no parleyd").
    char why[3 * HOME_PATH_MAX];
    int hrc = home_check(cli.home, why, sizeof why);
    if (hrc != PARLEY_OK && hrc != PARLEY_ERR_NOTFOUND) {
        return s_die(1, "%s", why);
    }
    static const struct {
        const char *name;
        int (*fn)(cli_t *cli);
    } cmds[] = {
        { "init", c_init },       { "id", c_id },
        { "send", c_send },       { "read", c_read },
        { "history", c_history }, { "watch", c_watch },
        { "peers", c_peers },     { "contacts", c_contacts },
        { "safety", c_safety },   { "status", c_status },
        { "doctor", c_doctor },   { "recover", c_recover },
        { "network", c_network }, { "invite", c_invite },
        { "join", c_join },       { "member", c_member },
        { "relay", c_relay },     { "channel", c_channel },
        { "chat", c_chat },
    };
    for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++) {
        if (strcmp(cmds[k].name, cmd) == 0) {
            return cmds[k].fn(&cli);
        }
    }
    fprintf(stderr, "parley: unknown command '%s'\n", cmd);
    s_usage(stderr);
    return 2;
}
