/*  tests/node/verifier_test.c — the verifier's self-test: for every number
 *  of helpers and every size of frame, each envelope gets exactly what
 *  envelope_validate alone says of it, good or bad, and with helpers the
 *  helpers really take jobs.
 */
#include "../../node/verifier.h"
#include "../../proto/identity.h"
#include "../../proto/limits.h"
#include "../../proto/selftest.h"
#include "testkit.h"

#include <stdlib.h>
#include <string.h>

#define S_NOW 1700000000000ull
#define S_ENVS (2 * PARLEY_BATCH_MAX)
#define S_ROUNDS 300

typedef struct {
    uint8_t *buf;
    size_t len;
    int rc;         /* what envelope_validate alone says */
    envelope_t env; /* and what it decodes */
} s_case_t;

//  Seals envelope number i of the test set into c: good ones of several
//  sizes, and every kind of bad one the ingest meets.
static void
s_make(const identity_t *id, size_t i, s_case_t *c)
{
    size_t body_len = i % 7 == 0 ? 3000 : 40 + i;
    uint8_t *body = malloc(body_len);
    c->buf = malloc(PARLEY_ENVELOPE_MAX + 1);
    CHECK(body && c->buf);
    memset(body, (int)i, body_len);
    envelope_t in;
    memset(&in, 0, sizeof in);
    in.version = PARLEY_ENVELOPE_VERSION;
    in.kind = ENVELOPE_KIND_DM;
    memcpy(in.author, identity_ed_pk(id), 32);
    memset(in.scope, 0x5c, 32);
    in.seq = i + 1;
    in.ts_ms = S_NOW;
    in.body = body;
    in.body_len = body_len;
    switch (i % 9) {
    case 5: in.expires_ms = S_NOW - 1; break;         // expired
    case 6: in.ts_ms = S_NOW + 3600 * 1000ull; break; // from the future
    default: break;
    }
    CHECK(envelope_seal(&in, identity_ed_sk(id), c->buf, PARLEY_ENVELOPE_MAX, &c->len) == 0);
    free(body);
    switch (i % 9) {
    case 1: c->buf[c->len - 1] ^= 0x01; break;                     // forged signature
    case 2: c->buf[PARLEY_ENVELOPE_HEADER_LEN + 3] ^= 0x80; break; // tampered body
    case 3: c->len -= 1; break;                                    // truncated
    case 4: c->buf[0] = 0xee; break;                               // unknown version
    case 7: c->len = PARLEY_ENVELOPE_MAX + 1; break;               // oversize
    case 8: memset(c->buf + 2, 0x11, 32); break;                   // another author
    default: break;
    }
    c->rc = envelope_validate(c->buf, c->len, S_NOW, &c->env);
}

static void
s_expect(const verifier_job_t *job, const s_case_t *c)
{
    CHECK(job->rc == c->rc);
    if (c->rc == PARLEY_OK) {
        CHECK(job->env.bytes == c->buf && job->env.bytes_len == c->len);
        CHECK(job->env.body == c->env.body && job->env.body_len == c->env.body_len);
        CHECK(job->env.signature == c->env.signature);
        CHECK(job->env.seq == c->env.seq && job->env.ts_ms == c->env.ts_ms);
        CHECK(memcmp(job->env.author, c->env.author, 32) == 0);
        CHECK(memcmp(job->env.scope, c->env.scope, 32) == 0);
    } else {
        CHECK(job->env.bytes == NULL && job->env.body == NULL);
    }
}

//  Rounds of every size 0..PARLEY_BATCH_MAX at shifting offsets.
static void
s_rounds(size_t threads, const s_case_t *cases)
{
    verifier_t *v = verifier_new(threads);
    CHECK(v);
    CHECK(verifier_running(v) == 0);
    verifier_job_t jobs[PARLEY_BATCH_MAX];
    for (size_t r = 0; r < S_ROUNDS; r++) {
        size_t n = r % (PARLEY_BATCH_MAX + 1);
        size_t at = (r * 7) % (S_ENVS - n + 1);
        for (size_t i = 0; i < n; i++) {
            memset(&jobs[i], 0xa5, sizeof jobs[i]);
            jobs[i].buf = cases[at + i].buf;
            jobs[i].len = cases[at + i].len;
        }
        verifier_run(v, jobs, n, S_NOW);
        for (size_t i = 0; i < n; i++) {
            s_expect(&jobs[i], &cases[at + i]);
        }
        //  Helpers start with the first round that has work for them.
        CHECK(verifier_running(v) == (r >= 2 ? threads : 0));
    }
    if (threads > 0) {
        //  Thousands of jobs of tens of microseconds each: helpers that
        //  never claimed one would be broken, not slow.
        CHECK(verifier_helped(v) > 0);
    } else {
        CHECK(verifier_helped(v) == 0);
    }
    verifier_destroy(&v);
    CHECK(v == NULL);
    verifier_destroy(&v);
}

void
verifier_test(bool verbose)
{
    identity_t *id = identity_new();
    CHECK(id);
    s_case_t *cases = calloc(S_ENVS, sizeof *cases);
    CHECK(cases);
    size_t good = 0;
    for (size_t i = 0; i < S_ENVS; i++) {
        s_make(id, i, &cases[i]);
        good += cases[i].rc == PARLEY_OK;
    }
    //  Each bad kind is refused for its own reason, and the good pass.
    CHECK(cases[0].rc == PARLEY_OK && cases[1].rc == PARLEY_ERR_AUTH);
    CHECK(cases[2].rc == PARLEY_ERR_AUTH && cases[3].rc != PARLEY_OK);
    CHECK(cases[4].rc != PARLEY_OK && cases[5].rc == PARLEY_ERR_EXPIRED);
    CHECK(cases[6].rc == PARLEY_ERR_FUTURE && cases[7].rc == PARLEY_ERR_LIMIT);
    CHECK(cases[8].rc == PARLEY_ERR_AUTH);
    CHECK(good == (S_ENVS + 8) / 9);
    size_t threads[] = { 0, 1, 3, NODE_VERIFY_THREADS_MAX };
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        s_rounds(threads[t], cases);
        if (verbose) {
            printf("  verifier: %zu helpers: %d rounds agree with envelope_validate\n", threads[t],
                   S_ROUNDS);
        }
    }
    //  More than the cap gets the cap.
    verifier_t *v = verifier_new(NODE_VERIFY_THREADS_MAX + 5);
    verifier_job_t jobs[2] = { { .buf = cases[0].buf, .len = cases[0].len },
                               { .buf = cases[9].buf, .len = cases[9].len } };
    verifier_run(v, jobs, 2, S_NOW);
    CHECK(verifier_running(v) == NODE_VERIFY_THREADS_MAX);
    CHECK(jobs[0].rc == PARLEY_OK && jobs[1].rc == PARLEY_OK);
    verifier_destroy(&v);
    node_config_t cfg;
    node_config_default(&cfg);
    CHECK(cfg.verify_threads <= NODE_VERIFY_THREADS_MAX);
    for (size_t i = 0; i < S_ENVS; i++) {
        free(cases[i].buf);
    }
    free(cases);
    identity_destroy(&id);
}
