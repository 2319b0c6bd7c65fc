/*  node/verifier.h — checks the envelopes of one frame on several cores.
 *
 *  Ingest spends most of its CPU in the Ed25519 verification of each
 *  envelope (SPEC §5.1, and §11 "Verification on every core"); everything after it (the store, the
 * sessions, the tables) belongs to the loop's thread. A verifier is a small fork-join pool for that
 * one pure step: the loop hands it the frame's envelopes, takes a share itself, and gets back, for
 * each, what envelope_validate says (limits, decode, signature, time) once all are done. Nothing
 * else runs on the helpers, and nothing they touch outlives the call.
 *
 *  Helpers start on the first call that has work for them, so an idle node
 *  holds no thread. With no helper (or none could start), the calling
 *  thread checks every envelope itself, in order: a verifier never refuses
 *  work.
 */
#ifndef PARLEY_NODE_VERIFIER_H
#define PARLEY_NODE_VERIFIER_H

#include "../proto/envelope.h"
#include "config.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct verifier verifier_t;

/*  One envelope to check. buf must stay valid and unchanged during the call;
 *  env views it when rc is PARLEY_OK. */
typedef struct {
    const uint8_t *buf; /* in: the encoded envelope */
    size_t len;         /* in */
    int rc;             /* out: envelope_validate's result */
    envelope_t env;     /* out: the decoded envelope (zeroed unless rc is PARLEY_OK) */
} verifier_job_t;

/*  A verifier with up to `threads` helpers (capped at NODE_VERIFY_THREADS_MAX;
 *  0: the caller checks alone). NULL when out of memory. */
verifier_t *verifier_new(size_t threads);
void verifier_destroy(verifier_t **self_p);
/*  Runs envelope_validate(jobs[i].buf, jobs[i].len, now_ms, &jobs[i].env)
 *  for every job; the calling thread takes a share and returns when all are
 *  done. Not reentrant: one caller at a time. */
void verifier_run(verifier_t *self, verifier_job_t *jobs, size_t n, uint64_t now_ms);
/*  Helpers running now (0 until a call needed them). */
size_t verifier_running(const verifier_t *self);
/*  Jobs the helpers have checked, in all (the rest were the callers'). */
uint64_t verifier_helped(verifier_t *self);

#endif
