/*  node/verifier.c — see verifier.h.
 *
 *  One round at a time: the caller publishes the jobs under the mutex and
 *  wakes the helpers; every thread, the caller too, claims the next
 *  unclaimed job under the mutex, checks it outside, and counts it done
 *  under the mutex. The caller returns once every job is done, so no helper
 *  can still hold a job of a round that has ended (a helper claims only
 *  while the round has unclaimed jobs). A claim costs one lock; a job, an
 *  Ed25519 verification, costs tens of microseconds.
 */
#include "verifier.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

struct verifier {
    pthread_mutex_t mu;
    pthread_cond_t work; /* helpers wait here for jobs or stop */
    pthread_cond_t done; /* the caller waits here for the round's last job */
    pthread_t helpers[NODE_VERIFY_THREADS_MAX];
    size_t want;    /* helpers asked for */
    size_t running; /* helpers started */
    bool tried;     /* the helpers were started (or could not be) */
    bool stop;      /* under mu: helpers leave */
    /* The round, under mu. */
    verifier_job_t *jobs;
    size_t n;      /* jobs in the round */
    size_t next;   /* the first unclaimed */
    size_t n_done; /* jobs checked */
    uint64_t now_ms;
    uint64_t helped; /* under mu: jobs checked by helpers, in all */
};

static void
s_check(verifier_job_t *job, uint64_t now_ms)
{
    job->rc = envelope_validate(job->buf, job->len, now_ms, &job->env);
}

//  Claims and checks jobs until none is left unclaimed. Called and returns
//  with mu held.
static void
s_work(verifier_t *self, bool helper)
{
    while (self->next < self->n) {
        verifier_job_t *job = &self->jobs[self->next++];
        uint64_t now_ms = self->now_ms;
        pthread_mutex_unlock(&self->mu);
        s_check(job, now_ms);
        pthread_mutex_lock(&self->mu);
        self->helped += helper;
        if (++self->n_done == self->n) {
            pthread_cond_signal(&self->done);
        }
    }
}

static void *
s_helper(void *arg)
{
    verifier_t *self = arg;
    pthread_mutex_lock(&self->mu);
    while (!self->stop) {
        if (self->next < self->n) {
            s_work(self, true);
        } else {
            pthread_cond_wait(&self->work, &self->mu);
        }
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

//  Starts the helpers, with every signal blocked in them: signals are the
//  embedding program's business (parleyd takes them with sigwait).
static void
s_start(verifier_t *self)
{
    self->tried = true;
    sigset_t all, old;
    sigfillset(&all);
    if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0) {
        return;
    }
    for (size_t i = 0; i < self->want; i++) {
        if (pthread_create(&self->helpers[i], NULL, s_helper, self) != 0) {
            break; // fewer helpers: the work still gets done
        }
        pthread_setname_np(self->helpers[i], "parley-verify");
        self->running++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

verifier_t *
verifier_new(size_t threads)
{
    verifier_t *self = calloc(1, sizeof *self);
    if (!self) {
        return NULL;
    }
    if (pthread_mutex_init(&self->mu, NULL) != 0) {
        free(self);
        return NULL;
    }
    if (pthread_cond_init(&self->work, NULL) != 0) {
        pthread_mutex_destroy(&self->mu);
        free(self);
        return NULL;
    }
    if (pthread_cond_init(&self->done, NULL) != 0) {
        pthread_cond_destroy(&self->work);
        pthread_mutex_destroy(&self->mu);
        free(self);
        return NULL;
    }
    self->want = threads < NODE_VERIFY_THREADS_MAX ? threads : NODE_VERIFY_THREADS_MAX;
    return self;
}

void
verifier_destroy(verifier_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    verifier_t *self = *self_p;
    pthread_mutex_lock(&self->mu);
    self->stop = true;
    pthread_cond_broadcast(&self->work);
    pthread_mutex_unlock(&self->mu);
    for (size_t i = 0; i < self->running; i++) {
        pthread_join(self->helpers[i], NULL);
    }
    pthread_cond_destroy(&self->done);
    pthread_cond_destroy(&self->work);
    pthread_mutex_destroy(&self->mu);
    free(self);
    *self_p = NULL;
}

void
verifier_run(verifier_t *self, verifier_job_t *jobs, size_t n, uint64_t now_ms)
{
    if (n < 2 || self->want == 0) {
        for (size_t i = 0; i < n; i++) {
            s_check(&jobs[i], now_ms);
        }
        return;
    }
    if (!self->tried) {
        s_start(self);
    }
    pthread_mutex_lock(&self->mu);
    self->jobs = jobs;
    self->n = n;
    self->next = 0;
    self->n_done = 0;
    self->now_ms = now_ms;
    if (self->running > 0) {
        pthread_cond_broadcast(&self->work);
    }
    s_work(self, false);
    while (self->n_done < self->n) {
        pthread_cond_wait(&self->done, &self->mu);
    }
    self->jobs = NULL;
    self->n = self->next = self->n_done = 0;
    pthread_mutex_unlock(&self->mu);
}

size_t
verifier_running(const verifier_t *self)
{
    return self->running;
}

uint64_t
verifier_helped(verifier_t *self)
{
    pthread_mutex_lock(&self->mu);
    uint64_t helped = self->helped;
    pthread_mutex_unlock(&self->mu);
    return helped;
}
