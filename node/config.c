/*  node/config.c — HOME/config.json (see config.h). */
#include "config.h"

#include "../proto/endpoint.h"
#include "../proto/identity.h"
#include "../proto/selftest.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
config_seed_parse(const char *seed, char *endpoint, size_t cap, uint8_t pk[32])
{
    const char *hash = strrchr(seed, '#');
    if (!hash || hash == seed) {
        return PARLEY_ERR_MALFORMED;
    }
    size_t len = (size_t)(hash - seed);
    if (len >= cap || !endpoint_valid(seed, len)) {
        return PARLEY_ERR_MALFORMED;
    }
    memcpy(endpoint, seed, len);
    endpoint[len] = '\0';
    return identity_parse_node_id(hash + 1, pk);
}

//  One verifier helper per online core beyond the first (node/verifier.h).
static uint64_t
s_verify_threads(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores <= 1) {
        return 0;
    }
    return (uint64_t)cores - 1 < NODE_VERIFY_THREADS_MAX ? (uint64_t)cores - 1
                                                         : NODE_VERIFY_THREADS_MAX;
}

void
node_config_default(node_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen = "tcp://0.0.0.0:*";
    cfg->ratchet_ms = NODE_DAY_MS;
    cfg->grace_ms = 14 * NODE_DAY_MS;
    cfg->prekey_rotate_ms = 7 * NODE_DAY_MS;
    cfg->chan_rotate_ms = 7 * NODE_DAY_MS;
    cfg->ping_ms = 5000;
    cfg->retry_ms = 3000;
    cfg->sync_ms = 30000;
    cfg->neighbours = 8;
    cfg->link_idle_ms = 300000;
    cfg->verify_threads = s_verify_threads();
}

int
config_parse(const char *text, size_t len, config_t *out, char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    if (len > CONFIG_FILE_MAX) {
        snprintf(why, cap, "larger than %u bytes", CONFIG_FILE_MAX);
        return PARLEY_ERR_LIMIT;
    }
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        snprintf(why, cap, "not a JSON object (line %d: %s)", root ? 1 : jerr.line,
                 root ? "top level" : jerr.text);
        json_decref(root);
        return PARLEY_ERR_MALFORMED;
    }
    int rc = PARLEY_OK;
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        if (strcmp(key, "seeds") != 0) {
            snprintf(why, cap, "unknown key \"%.40s\" (known: seeds)", key);
            rc = PARLEY_ERR_MALFORMED;
            break;
        }
    }
    json_t *seeds = json_object_get(root, "seeds");
    if (rc == PARLEY_OK && seeds && !json_is_array(seeds)) {
        snprintf(why, cap, "\"seeds\" must be an array of strings");
        rc = PARLEY_ERR_MALFORMED;
    }
    if (rc == PARLEY_OK && json_array_size(seeds) > NODE_SEEDS_MAX) {
        snprintf(why, cap, "at most %u seeds", NODE_SEEDS_MAX);
        rc = PARLEY_ERR_LIMIT;
    }
    for (size_t i = 0; rc == PARLEY_OK && i < json_array_size(seeds); i++) {
        json_t *s = json_array_get(seeds, i);
        const char *str = json_string_value(s);
        char endpoint[PARLEY_ENDPOINT_MAX + 1];
        uint8_t pk[32];
        if (!str || strlen(str) != json_string_length(s) || strlen(str) >= CONFIG_SEED_MAX
            || config_seed_parse(str, endpoint, sizeof endpoint, pk) != PARLEY_OK) {
            snprintf(why, cap, "seed %zu is not tcp://HOST:PORT#NODEID", i + 1);
            rc = PARLEY_ERR_MALFORMED;
            break;
        }
        memcpy(out->seeds[out->n_seeds++], str, strlen(str) + 1);
    }
    json_decref(root);
    return rc;
}

int
config_load(const char *home, config_t *out, char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", home);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        return PARLEY_OK;
    }
    if (fd < 0) {
        snprintf(why, cap, "cannot read %s", path);
        return PARLEY_ERR_IO;
    }
    char *buf = malloc(CONFIG_FILE_MAX + 1);
    ssize_t n = buf ? read(fd, buf, CONFIG_FILE_MAX + 1) : -1;
    close(fd);
    if (n < 0) {
        free(buf);
        snprintf(why, cap, "cannot read %s", path);
        return PARLEY_ERR_IO;
    }
    char inner[200];
    int rc = config_parse(buf, (size_t)n, out, inner, sizeof inner);
    free(buf);
    if (rc != PARLEY_OK) {
        snprintf(why, cap, "%s: %s", path, inner);
    }
    return rc;
}

void
config_test(bool verbose)
{
    (void)verbose;
    config_t c;
    char why[200];
    identity_t *id = identity_new();
    char nid[PARLEY_NODE_ID_STRLEN + 1], text[512];
    identity_node_id(identity_ed_pk(id), nid);
    snprintf(text, sizeof text, "{\"seeds\": [\"tcp://10.0.0.1:7400#%s\"]}", nid);
    CHECK(config_parse(text, strlen(text), &c, why, sizeof why) == PARLEY_OK && c.n_seeds == 1);
    CHECK(config_parse("{}", 2, &c, why, sizeof why) == PARLEY_OK && c.n_seeds == 0);
    static const char *bad[] = {
        "",
        "[]",
        "{\"seed\": []}",
        "{\"seeds\": \"x\"}",
        "{\"seeds\": [1]}",
        "{\"seeds\": [\"tcp://h:1\"]}",
        "{\"seeds\": [\"tcp://0.0.0.0:1#abc\"]}",
        "{\"seeds\": [], \"seeds\": []}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(config_parse(bad[i], strlen(bad[i]), &c, why, sizeof why) != PARLEY_OK);
        CHECK(why[0] != '\0');
    }
    for (size_t cut = 0; cut < strlen(text); cut++) {
        CHECK(config_parse(text, cut, &c, why, sizeof why) != PARLEY_OK);
    }
    identity_destroy(&id);
}
