/*  node/api_req.c — JSON-RPC 2.0 request checking and response building.
 *
 *  Invariant: a request that api_req_parse accepts has a string method of at
 *  most API_METHOD_MAX bytes, an id that is a string, an integer or null (or
 *  none, for a notification), and params that are an object or absent. Every
 *  handler can rely on that and never re-checks the envelope of a request.
 */
#include "api_req.h"

#include "../proto/selftest.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
api_req_parse(const char *line, size_t len, api_req_t *req, const char **msg)
{
    memset(req, 0, sizeof *req);
    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        *msg = "parse error: not valid JSON";
        return API_ERR_PARSE;
    }
    return api_req_check(root, req, msg);
}

static bool
s_id_valid(const json_t *id)
{
    return json_is_string(id) || json_is_integer(id) || json_is_null(id);
}

int
api_req_check(json_t *root, api_req_t *req, const char **msg)
{
    memset(req, 0, sizeof *req);
    if (!json_is_object(root)) {
        json_decref(root);
        *msg = "invalid request: not an object";
        return API_ERR_INVALID;
    }
    json_t *version = json_object_get(root, "jsonrpc");
    json_t *method = json_object_get(root, "method");
    json_t *params = json_object_get(root, "params");
    json_t *id = json_object_get(root, "id");
    //  JSON-RPC 2.0: an error to a request whose id could be read carries that id.
    req->root = root;
    req->id = s_id_valid(id) ? id : NULL;
    if (!json_is_string(version) || strcmp(json_string_value(version), "2.0") != 0) {
        *msg = "invalid request: jsonrpc must be \"2.0\"";
    } else if (!json_is_string(method) || json_string_length(method) == 0
               || json_string_length(method) > API_METHOD_MAX
               || strlen(json_string_value(method)) != json_string_length(method)) {
        *msg = "invalid request: method must be a short string";
    } else if (params && !json_is_object(params)) {
        *msg = "invalid request: params must be an object (by-name parameters)";
    } else if (id && !s_id_valid(id)) {
        *msg = "invalid request: id must be a string, an integer or null";
    } else {
        req->method = json_string_value(method);
        req->params = params;
        return 0;
    }
    return API_ERR_INVALID;
}

void
api_req_free(api_req_t *req)
{
    if (req) {
        json_decref(req->root);
        memset(req, 0, sizeof *req);
    }
}

//  "missing parameter: NAME", in the request's own buffer.
static const char *
s_missing(api_req_t *req, const char *name)
{
    snprintf(req->msgbuf, sizeof req->msgbuf, "missing parameter: %.64s", name);
    return req->msgbuf;
}

static json_t *
s_param(const api_req_t *req, const char *name)
{
    return req->params ? json_object_get(req->params, name) : NULL;
}

int
api_param_str(api_req_t *req, const char *name, bool required, const char **out, const char **msg)
{
    json_t *v = s_param(req, name);
    if (!v || json_is_null(v)) {
        if (required) {
            *msg = s_missing(req, name);
            return API_ERR_PARAMS;
        }
        return 0;
    }
    //  Strings with an embedded NUL would be cut short by C code: refuse them.
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        *msg = "a parameter must be a string without NUL";
        return API_ERR_PARAMS;
    }
    *out = json_string_value(v);
    return 0;
}

int
api_param_uint(api_req_t *req, const char *name, bool required, uint64_t *out, const char **msg)
{
    json_t *v = s_param(req, name);
    if (!v || json_is_null(v)) {
        if (required) {
            *msg = s_missing(req, name);
            return API_ERR_PARAMS;
        }
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        *msg = "a parameter must be a non-negative integer";
        return API_ERR_PARAMS;
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int
api_param_bool(const api_req_t *req, const char *name, bool *out, const char **msg)
{
    json_t *v = s_param(req, name);
    if (!v || json_is_null(v)) {
        return 0;
    }
    if (!json_is_boolean(v)) {
        *msg = "a parameter must be a boolean";
        return API_ERR_PARAMS;
    }
    *out = json_is_true(v);
    return 0;
}

json_t *
api_result(json_t *id, json_t *result)
{
    return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id ? id : json_null(), "result",
                     result ? result : json_null());
}

json_t *
api_error(json_t *id, int code, const char *message)
{
    return json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(),
                     "error", "code", code, "message", message);
}

const char *
api_status_name(int status)
{
    switch (status) {
    case PARLEY_OK: return "ok";
    case PARLEY_ERR_MALFORMED: return "malformed";
    case PARLEY_ERR_AUTH: return "auth";
    case PARLEY_ERR_IO: return "io";
    case PARLEY_ERR_NOMEM: return "nomem";
    case PARLEY_ERR_LIMIT: return "limit";
    case PARLEY_ERR_NOTFOUND: return "not_found";
    case PARLEY_ERR_STATE: return "state";
    case PARLEY_ERR_EXISTS: return "exists";
    case PARLEY_ERR_DUPLICATE: return "duplicate";
    case PARLEY_ERR_EQUIVOCATION: return "equivocation";
    case PARLEY_ERR_FUTURE: return "future";
    case PARLEY_ERR_EXPIRED: return "expired";
    case PARLEY_ERR_CRYPTO: return "crypto";
    case PARLEY_ERR_NOKEY: return "no_key";
    case PARLEY_ERR_BUSY: return "busy";
    case PARLEY_ERR_AMBIGUOUS: return "ambiguous";
    case PARLEY_ERR_UNSUPPORTED: return "unsupported";
    case PARLEY_ERR_CORRUPT: return "corrupt";
    default: return "unknown";
    }
}

json_t *
api_error_parley(json_t *id, int status, const char *message)
{
    json_t *err = api_error(id, API_ERR_BASE + status, message ? message : parley_strerror(status));
    json_t *e = err ? json_object_get(err, "error") : NULL;
    if (e) {
        json_object_set_new(e, "data", json_pack("{s:s}", "error", api_status_name(status)));
    }
    return err;
}

json_t *
api_notification(const char *method, json_t *params)
{
    return json_pack("{s:s, s:s, s:o}", "jsonrpc", "2.0", "method", method, "params",
                     params ? params : json_object());
}

char *
api_dump_line(const json_t *obj, size_t *len)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    if (!text) {
        return NULL;
    }
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    *len = n + 1;
    return line;
}

void
api_req_test(bool verbose)
{
    (void)verbose;
    api_req_t req;
    const char *msg = NULL;
    static const char *bad[] = {
        "",
        "{",
        "[]",
        "42",
        "{\"jsonrpc\":\"1.0\",\"method\":\"id\"}",
        "{\"jsonrpc\":\"2.0\"}",
        "{\"jsonrpc\":\"2.0\",\"method\":7}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"id\",\"params\":[1]}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"id\",\"id\":{}}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"id\",\"id\":1.5}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"a\\u0000b\"}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"id\",\"method\":\"id\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(api_req_parse(bad[i], strlen(bad[i]), &req, &msg) < 0);
        CHECK(req.method == NULL);
        api_req_free(&req);
    }
    //  An invalid request whose id is readable keeps the id for its error.
    const char *pos = "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"send\",\"params\":[1]}";
    CHECK(api_req_parse(pos, strlen(pos), &req, &msg) == API_ERR_INVALID);
    CHECK(json_integer_value(req.id) == 8);
    api_req_free(&req);
    const char *badid = "{\"jsonrpc\":\"2.0\",\"id\":[8],\"method\":\"send\"}";
    CHECK(api_req_parse(badid, strlen(badid), &req, &msg) == API_ERR_INVALID && !req.id);
    api_req_free(&req);
    const char *good = "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"send\","
                       "\"params\":{\"peer\":\"bob\",\"limit\":5,\"x\":7}}";
    CHECK(api_req_parse(good, strlen(good), &req, &msg) == 0);
    CHECK(strcmp(req.method, "send") == 0);
    const char *peer = NULL;
    uint64_t limit = 0;
    CHECK(api_param_str(&req, "peer", true, &peer, &msg) == 0 && strcmp(peer, "bob") == 0);
    CHECK(api_param_uint(&req, "limit", true, &limit, &msg) == 0 && limit == 5);
    CHECK(api_param_str(&req, "x", true, &peer, &msg) == API_ERR_PARAMS);
    //  Jansson refuses an embedded NUL in a string: such a request never parses.
    const char *nul = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"send\","
                      "\"params\":{\"text\":\"a\\u0000b\"}}";
    api_req_t nreq;
    CHECK(api_req_parse(nul, strlen(nul), &nreq, &msg) == API_ERR_PARSE);
    CHECK(api_param_str(&req, "absent", true, &peer, &msg) == API_ERR_PARAMS);
    CHECK(strcmp(msg, "missing parameter: absent") == 0);
    CHECK(api_param_uint(&req, "count", true, &limit, &msg) == API_ERR_PARAMS);
    CHECK(strcmp(msg, "missing parameter: count") == 0);
    CHECK(api_param_uint(&req, "peer", false, &limit, &msg) == API_ERR_PARAMS);
    json_t *err = api_error_parley(req.id, PARLEY_ERR_NOTFOUND, NULL);
    size_t len = 0;
    char *line = api_dump_line(err, &len);
    CHECK(line && line[len - 1] == '\n' && strstr(line, "-32006") && strstr(line, "not_found"));
    free(line);
    json_decref(err);
    api_req_free(&req);
    //  Truncations of a good request never crash and never half-succeed.
    for (size_t i = 0; i < strlen(good); i++) {
        if (api_req_parse(good, i, &req, &msg) == 0) {
            api_req_free(&req);
        }
    }
}
