/*  tests/fuzz/fuzz_api.c — api_req_parse (api_req_check on each element of
 *  a batch) and the parameter getters on arbitrary request lines.
 *
 *  Anyone who can open the node's api.sock can send any line; the parser must
 *  turn it into a checked request or a JSON-RPC error, and the getters must
 *  cope with any params object. The input is passed with its exact length
 *  and no NUL after it, as the node's reader passes it.
 */
#include "fuzz_common.h"

#include "../../node/api_req.h"

/*  The names the node's methods read (node/api.c), plus one never present. */
static const char *const s_names[] = { "peer", "text", "limit", "id", "name", "replace", "" };

static void
s_getters(api_req_t *req)
{
    for (size_t i = 0; i < sizeof s_names / sizeof s_names[0]; i++) {
        const char *msg = NULL;
        const char *str = NULL;
        uint64_t u = 0;
        bool b = false;
        for (int required = 0; required <= 1; required++) {
            int rc = api_param_str(req, s_names[i], required, &str, &msg);
            FUZZ_CHECK(rc == 0 || (rc == API_ERR_PARAMS && msg));
            if (rc == 0 && str) {
                (void)strlen(str); // a NUL-terminated string ASan can read
            }
            rc = api_param_uint(req, s_names[i], required, &u, &msg);
            FUZZ_CHECK(rc == 0 || (rc == API_ERR_PARAMS && msg));
        }
        int rc = api_param_bool(req, s_names[i], &b, &msg);
        FUZZ_CHECK(rc == 0 || (rc == API_ERR_PARAMS && msg));
    }
}

/*  Answers the request the way the node does, which serialises req->id. */
static void
s_answer(const api_req_t *req)
{
    json_t *reply = api_error_parley(req->id, PARLEY_ERR_NOTFOUND, NULL);
    FUZZ_CHECK(reply != NULL);
    size_t len = 0;
    char *line = api_dump_line(reply, &len);
    FUZZ_CHECK(line && len >= 2 && line[len - 1] == '\n');
    free(line);
    json_decref(reply);
}

/*  A batch, as node/api.c takes one: each element checked on its own. */
static void
s_batch(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *root =
        json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    for (size_t i = 0; json_is_array(root) && i < json_array_size(root); i++) {
        api_req_t req;
        const char *msg = NULL;
        int rc = api_req_check(json_incref(json_array_get(root, i)), &req, &msg);
        FUZZ_CHECK(rc == 0 ? req.method != NULL : (rc < 0 && msg && !req.method));
        if (rc == 0) {
            s_getters(&req);
        }
        s_answer(&req);
        api_req_free(&req);
    }
    json_decref(root);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    s_batch(data, size);
    api_req_t req;
    const char *msg = NULL;
    int rc = api_req_parse((const char *)data, size, &req, &msg);
    if (rc != 0) {
        FUZZ_CHECK(rc < 0 && msg != NULL && !req.method);
        FUZZ_CHECK(!req.id || json_is_string(req.id) || json_is_integer(req.id)
                   || json_is_null(req.id));
        s_answer(&req);
        api_req_free(&req);
        return 0;
    }
    FUZZ_CHECK(req.root && req.method);
    FUZZ_CHECK(strlen(req.method) <= API_METHOD_MAX);
    FUZZ_CHECK(!req.params || json_is_object(req.params));
    FUZZ_CHECK(!req.id || json_is_string(req.id) || json_is_integer(req.id)
               || json_is_null(req.id));
    s_getters(&req);
    s_answer(&req);
    api_req_free(&req);
    return 0;
}
