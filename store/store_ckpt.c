/*  store/store_ckpt.c — the background checkpointer: moves the WAL into the
 *  database file on a thread of its own, so the node's loop never stops for
 *  a checkpoint.
 *
 *  Without it, SQLite checkpoints inside the COMMIT that takes the WAL past
 *  1000 frames: that commit copies up to 1000 pages into the file and syncs
 *  it, some 10 ms on a virtual disk, several times a second under load, and
 *  more often as the log grows (a write to a large index dirties a page of
 *  its own). With it:
 *
 *      node thread (self->db)               checkpointer (own connection)
 *      COMMIT ─► WAL hook: frames ≥ STORE_CKPT_FRAMES?
 *                 └► want = true, signal ──► PASSIVE checkpoint: syncs the
 *      (next commits go on)                  WAL, copies the frames no
 *                                            reader needs, syncs the file
 *
 *  A PASSIVE checkpoint takes no lock a writer waits for; the writer starts
 *  the WAL over once a checkpoint caught up with it. Durability is what it
 *  was: the checkpointer syncs the WAL before it copies from it, as SQLite's
 *  own does. store_checkpoint (TRUNCATE, for wiped secrets) still runs on
 *  the node's connection and reports PARLEY_ERR_BUSY while this one runs;
 *  the node tries again later.
 *
 *  The hook runs on the node's thread; the mutex guards only want, stop and
 *  done. The checkpointer's connection is used by its thread alone.
 */
#include "store.h"
#include "store_int.h"
#include <pthread.h>
#include <stdlib.h>

#define S_SQLITE_AUTOCHECKPOINT                                                                    \
    1000 /* SQLite's default: the hook's own, without the checkpointer */

struct store_ckpt {
    sqlite3 *db; /* the checkpointer's connection */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool want;     /* a commit left the WAL at STORE_CKPT_FRAMES or more */
    bool stop;     /* store_destroy: finish and exit */
    uint64_t done; /* checkpoints completed */
};

static void *
s_run_thread(void *arg)
{
    store_ckpt_t *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->want && !c->stop) {
            pthread_cond_wait(&c->cv, &c->mu);
        }
        if (c->stop) {
            break;
        }
        c->want = false;
        pthread_mutex_unlock(&c->mu);
        int log = 0;
        int copied = 0;
        int rc = sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
        pthread_mutex_lock(&c->mu);
        c->done += rc == SQLITE_OK;
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

//  Returns SQLITE_OK: the commit is not affected. Without the checkpointer
//  it does what SQLite's default hook does (a PASSIVE checkpoint in the
//  commit, past 1000 frames).
int
store_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    store_t *self = arg;
    self->wrote = true;
    self->stats_stale = true;
    store_ckpt_t *c = self->ckpt;
    if (c == NULL) {
        if (frames >= S_SQLITE_AUTOCHECKPOINT) {
            (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        }
    } else if (frames >= (int)STORE_CKPT_FRAMES) {
        pthread_mutex_lock(&c->mu);
        c->want = true;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    return SQLITE_OK;
}

int
store_checkpointer_start(store_t *self)
{
    if (self->ckpt != NULL) {
        return PARLEY_ERR_STATE;
    }
    const char *path = sqlite3_db_filename(self->db, "main");
    if (path == NULL || *path == '\0') {
        return PARLEY_ERR_STATE; // an in-memory database has no WAL
    }
    store_ckpt_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return PARLEY_ERR_NOMEM;
    }
    int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(c->db, "PRAGMA synchronous=FULL; PRAGMA trusted_schema=OFF;", NULL, NULL,
                          NULL);
    }
    int err = rc == SQLITE_OK ? 0 : PARLEY_ERR_IO;
    bool mu = false;
    bool cv = false;
    if (err == 0) {
        mu = pthread_mutex_init(&c->mu, NULL) == 0;
        cv = mu && pthread_cond_init(&c->cv, NULL) == 0;
        err = cv && pthread_create(&c->thread, NULL, s_run_thread, c) == 0 ? 0 : PARLEY_ERR_NOMEM;
    }
    if (err != 0) {
        if (cv) {
            pthread_cond_destroy(&c->cv);
        }
        if (mu) {
            pthread_mutex_destroy(&c->mu);
        }
        (void)sqlite3_close_v2(c->db); // NULL-safe
        free(c);
        return err;
    }
    self->ckpt = c; // store_wal_hook wakes it from now on
    return 0;
}

uint64_t
store_checkpointer_done(store_t *self)
{
    store_ckpt_t *c = self->ckpt;
    if (c == NULL) {
        return 0;
    }
    pthread_mutex_lock(&c->mu);
    uint64_t done = c->done;
    pthread_mutex_unlock(&c->mu);
    return done;
}

void
store_checkpointer_stop(store_t *self)
{
    store_ckpt_t *c = self ? self->ckpt : NULL;
    if (c == NULL) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    (void)sqlite3_close_v2(c->db);
    free(c);
    self->ckpt = NULL;
}
