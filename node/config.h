/*  node/config.h — the home's config file, HOME/config.json.
 *
 *      { "seeds": ["tcp://HOST:PORT#NODEID", ...] }
 *
 *  Optional. Unknown keys are refused (a typo should not be silently
 *  ignored), every seed is checked (endpoint and node id), at most
 *  NODE_SEEDS_MAX of them. Parsing is pure (no I/O) so it has a fuzz target.
 */
#ifndef PARLEY_NODE_CONFIG_H
#define PARLEY_NODE_CONFIG_H

#include "../proto/errors.h"
#include "node.h"
#include <stdbool.h>
#include <stddef.h>

#define CONFIG_FILE_MAX (64u * 1024u)
#define CONFIG_SEED_MAX 320u /* endpoint + '#' + node id */

typedef struct {
    char seeds[NODE_SEEDS_MAX][CONFIG_SEED_MAX]; /* NUL-terminated, checked */
    size_t n_seeds;
} config_t;

/*  Parses text; on failure returns PARLEY_ERR_MALFORMED or _LIMIT and writes
 *  one line saying what is wrong into why. */
int config_parse(const char *text, size_t len, config_t *out, char *why, size_t cap) PARLEY_WUR;
/*  Checks "tcp://HOST:PORT#NODEID"; fills endpoint (cap bytes) and pk. */
int config_seed_parse(const char *seed, char *endpoint, size_t cap, uint8_t pk[32]) PARLEY_WUR;
/*  Reads HOME/config.json: PARLEY_OK with an empty config when absent. */
int config_load(const char *home, config_t *out, char *why, size_t cap) PARLEY_WUR;

void config_test(bool verbose);

#endif
