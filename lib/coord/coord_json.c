/* coord_json.c — etcd's JSON gateway, both ways: the request bodies MemX sends
 * and the validation of every reply (coord_parse.h).  Keys and values are
 * base64 (libsodium's strict codec), int64 fields JSON strings; the parser
 * trusts nothing: a wrong type, a bad base64, a negative revision or a key
 * outside the cluster's prefix makes the whole reply -EPROTO. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_int.h"
#include "xalloc.h"

#define CJ_VAL_MAX (1u << 20)   /* no MemX value comes near it */

/* ---- request bodies ---- */

char *cj_full_key(const struct coord *c, const char *rel)
{
    size_t n = strlen(c->prefix) + 1 + strlen(rel) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", c->prefix, rel);
    return s;
}

char *cj_range_end(const char *full)
{
    size_t n = strlen(full);
    char *s = strdup(full);
    if (!s)
        return NULL;
    /* etcd's prefix convention: the key with its last byte that is not 0xff
     * incremented, everything after it dropped (all 0xff: "\0", the end). */
    while (n > 0 && (unsigned char)s[n - 1] == 0xff)
        s[--n] = '\0';
    if (n == 0) {
        free(s);
        return strdup("");
    }
    s[n - 1]++;
    return s;
}

static json_object *b64(const char *p, size_t n)
{
    size_t bl = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
    char *s = malloc(bl);
    if (!s)
        return NULL;
    sodium_bin2base64(s, bl, (const unsigned char *)p, n, sodium_base64_VARIANT_ORIGINAL);
    json_object *o = json_object_new_string(s);
    free(s);
    return o;
}

static json_object *i64s(int64_t v)
{
    char s[24];
    snprintf(s, sizeof(s), "%" PRId64, v);
    return json_object_new_string(s);
}

/* Adds, remembering a failure (json-c returns NULL on ENOMEM). */
static void add(json_object *o, const char *k, json_object *v, bool *bad)
{
    if (!o || !v || json_object_object_add(o, k, v) < 0) {
        json_object_put(v);
        *bad = true;
    }
}

static char *finish(json_object *o, bool bad)
{
    char *s = NULL;
    if (o && !bad) {
        const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        s = t ? strdup(t) : NULL;
    }
    json_object_put(o);
    return s;
}

static json_object *put_obj(const char *full, const char *val, int64_t lease, bool *bad)
{
    json_object *o = json_object_new_object();
    add(o, "key", b64(full, strlen(full)), bad);
    add(o, "value", b64(val, strlen(val)), bad);
    if (lease)
        add(o, "lease", i64s(lease), bad);
    return o;
}

static json_object *del_obj(const char *full, bool prefix, bool *bad)
{
    json_object *o = json_object_new_object();
    add(o, "key", b64(full, strlen(full)), bad);
    if (prefix) {
        char *e = cj_range_end(full);
        if (!e)
            *bad = true;
        else
            add(o, "range_end", b64(e, strlen(e)), bad);
        free(e);
    }
    return o;
}

char *cj_put_body(const char *full, const char *val, int64_t lease)
{
    bool bad = false;
    json_object *o = put_obj(full, val, lease, &bad);
    return finish(o, bad);
}

char *cj_del_body(const char *full, bool prefix)
{
    bool bad = false;
    json_object *o = del_obj(full, prefix, &bad);
    return finish(o, bad);
}

char *cj_range_body(const char *full, bool prefix, int64_t min_mod_rev, bool keys_only, int limit_newest)
{
    bool bad = false;
    json_object *o = del_obj(full, prefix, &bad);
    if (min_mod_rev > 0)
        add(o, "min_mod_revision", i64s(min_mod_rev), &bad);
    if (keys_only)
        add(o, "keys_only", json_object_new_boolean(1), &bad);
    if (limit_newest > 0) {     /* the newest keys by mod_revision */
        add(o, "limit", i64s(limit_newest), &bad);
        add(o, "sort_order", json_object_new_string("DESCEND"), &bad);
        add(o, "sort_target", json_object_new_string("MOD"), &bad);
    }
    return finish(o, bad);
}

char *cj_txn_body(const struct coord *c, const char *cmp_full, int64_t expect, const struct coord_op *ops,
                  size_t nops, int64_t lease)
{
    bool bad = false;
    json_object *o = json_object_new_object(), *cmp = json_object_new_object();
    json_object *cmps = json_object_new_array(), *succ = json_object_new_array();
    /* A missing key compares as mod_revision 0 (etcd 3.4 compares the zero
     * KeyValue), so expect 0 means "does not exist". */
    add(cmp, "target", json_object_new_string("MOD"), &bad);
    add(cmp, "key", b64(cmp_full, strlen(cmp_full)), &bad);
    add(cmp, "mod_revision", i64s(expect), &bad);
    add(cmp, "result", json_object_new_string("EQUAL"), &bad);
    if (!cmps || json_object_array_add(cmps, cmp) < 0) {
        json_object_put(cmp);
        bad = true;
    }
    for (size_t i = 0; i < nops && !bad; i++) {
        char *full = cj_full_key(c, ops[i].key);
        json_object *op = json_object_new_object(), *inner;
        if (!full) {
            bad = true;
            json_object_put(op);
            break;
        }
        if (ops[i].val) {
            inner = put_obj(full, ops[i].val, ops[i].leased ? lease : 0, &bad);
            add(op, "request_put", inner, &bad);
        } else {
            inner = del_obj(full, false, &bad);
            add(op, "request_delete_range", inner, &bad);
        }
        free(full);
        if (!succ || json_object_array_add(succ, op) < 0) {
            json_object_put(op);
            bad = true;
        }
    }
    add(o, "compare", cmps, &bad);
    add(o, "success", succ, &bad);
    return finish(o, bad);
}

char *cj_watch_body(const char *full, int64_t start_rev)
{
    bool bad = false;
    json_object *o = json_object_new_object(), *cr = del_obj(full, true, &bad);
    add(cr, "start_revision", i64s(start_rev), &bad);
    add(o, "create_request", cr, &bad);
    return finish(o, bad);
}

char *cj_lease_body(const char *field, int64_t v)
{
    bool bad = false;
    json_object *o = json_object_new_object();
    add(o, field, i64s(v), &bad);
    return finish(o, bad);
}

/* ---- reply parsing ---- */

#define FAIL(...) do { snprintf(why, whylen, __VA_ARGS__); return -EPROTO; } while (0)

/* An optional int64-as-string field: absent = 0. */
static int get_i64(json_object *o, const char *k, int64_t *v, bool *present, char *why, size_t whylen)
{
    json_object *f;
    *v = 0;
    if (present)
        *present = false;
    if (!json_object_object_get_ex(o, k, &f))
        return 0;
    const char *s;
    if (json_object_is_type(f, json_type_string))
        s = json_object_get_string(f);
    else
        FAIL("\"%s\" is not an int64 string", k);
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || errno || x < 0)
        FAIL("\"%s\" is not a non-negative int64", k);
    *v = x;
    if (present)
        *present = true;
    return 0;
}

static int get_bool(json_object *o, const char *k, bool *v, char *why, size_t whylen)
{
    json_object *f;
    *v = false;
    if (!json_object_object_get_ex(o, k, &f))
        return 0;
    if (!json_object_is_type(f, json_type_boolean))
        FAIL("\"%s\" is not a boolean", k);
    *v = json_object_get_boolean(f);
    return 0;
}

/* A base64 field into a fresh NUL-terminated buffer (absent: ""). */
static int get_b64(json_object *o, const char *k, char **out, size_t *n, char *why, size_t whylen)
{
    json_object *f;
    const char *s = "";
    *out = NULL;
    if (json_object_object_get_ex(o, k, &f)) {
        if (!json_object_is_type(f, json_type_string))
            FAIL("\"%s\" is not a string", k);
        s = json_object_get_string(f);
    }
    size_t sl = strlen(s), cap = sl / 4 * 3 + 3;
    if (cap > CJ_VAL_MAX)
        FAIL("\"%s\" is too long", k);
    char *b = malloc(cap + 1);
    if (!b)
        return -ENOMEM;
    size_t bl = 0;
    if (sl && sodium_base642bin((unsigned char *)b, cap, s, sl, NULL, &bl, NULL,
                                sodium_base64_VARIANT_ORIGINAL) != 0) {
        free(b);
        FAIL("\"%s\" is not base64", k);
    }
    b[bl] = '\0';
    *out = b;
    *n = bl;
    return 0;
}

static int parse_kv(json_object *o, const char *prefix, struct coord_kv *kv, char *why, size_t whylen)
{
    char *key, *val;
    size_t kl, vl, pl = strlen(prefix);
    int r;
    if (!json_object_is_type(o, json_type_object))
        FAIL("a kv is not an object");
    if ((r = get_b64(o, "key", &key, &kl, why, whylen)))
        return r;
    kv->key = key;
    if (kl != strlen(key) || kl <= pl || memcmp(key, prefix, pl) != 0 || key[pl] != '/')
        FAIL("a key is not under %s", prefix);
    memmove(key, key + pl + 1, kl - pl);        /* relative, its NUL included */
    if ((r = get_b64(o, "value", &val, &vl, why, whylen)))
        return r;
    kv->val = val;
    kv->vlen = vl;
    if ((r = get_i64(o, "create_revision", &kv->create_rev, NULL, why, whylen)) ||
        (r = get_i64(o, "mod_revision", &kv->mod_rev, NULL, why, whylen)) ||
        (r = get_i64(o, "lease", &kv->lease, NULL, why, whylen)))
        return r;
    if (kv->mod_rev <= 0)
        FAIL("a kv has no mod_revision");
    return 0;
}

static int parse_kvs(json_object *arr, const char *prefix, struct cj_reply *out, bool events, char *why,
                     size_t whylen)
{
    if (!json_object_is_type(arr, json_type_array))
        FAIL("\"%s\" is not an array", events ? "events" : "kvs");
    size_t n = json_object_array_length(arr);
    if (n == 0)
        return 0;
    out->kvs = xcalloc(n, sizeof(*out->kvs));
    if (!out->kvs || (events && !(out->evs = xcalloc(n, sizeof(*out->evs)))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i), *kv = e;
        out->nkv = i + 1;
        if (events) {
            json_object *t;
            if (!json_object_is_type(e, json_type_object) || !json_object_object_get_ex(e, "kv", &kv))
                FAIL("an event has no kv");
            out->evs[i] = COORD_EV_PUT;
            if (json_object_object_get_ex(e, "type", &t)) {
                const char *ts = json_object_get_string(t);
                if (!json_object_is_type(t, json_type_string) || (strcmp(ts, "DELETE") && strcmp(ts, "PUT")))
                    FAIL("an event's type is not PUT or DELETE");
                if (!strcmp(ts, "DELETE"))
                    out->evs[i] = COORD_EV_DEL;
            }
        }
        int r = parse_kv(kv, prefix, &out->kvs[i], why, whylen);
        if (r)
            return r;
    }
    return 0;
}

static int parse_obj(enum cj_kind kind, json_object *o, const char *prefix, struct cj_reply *out, char *why,
                     size_t whylen)
{
    json_object *f, *h;
    int r;
    if (!json_object_is_type(o, json_type_object))
        FAIL("the reply is not an object");
    if (json_object_object_get_ex(o, "error", &f)) {
        json_object *m;
        const char *msg = json_object_object_get_ex(o, "message", &m) ? json_object_get_string(m)
                                                                     : json_object_get_string(f);
        snprintf(why, whylen, "etcd: %s", msg ? msg : "an error");
        return -EIO;
    }
    if (kind == CJ_KEEPALIVE || kind == CJ_WATCH) {     /* a stream's message */
        if (!json_object_object_get_ex(o, "result", &o) || !json_object_is_type(o, json_type_object))
            FAIL("no \"result\" object");
    }
    if (!json_object_object_get_ex(o, "header", &h) || !json_object_is_type(h, json_type_object))
        FAIL("no \"header\" object");
    if ((r = get_i64(h, "revision", &out->rev, NULL, why, whylen)))
        return r;
    if (out->rev <= 0)
        FAIL("no header.revision");
    switch (kind) {
    case CJ_GRANT:
    case CJ_KEEPALIVE: {
        bool have;
        if ((r = get_i64(o, "ID", &out->id, &have, why, whylen)) ||
            (r = get_i64(o, "TTL", &out->ttl, NULL, why, whylen)))
            return r;
        if (!have || out->id == 0)
            FAIL("no lease ID");
        if (kind == CJ_GRANT && out->ttl <= 0)
            FAIL("a lease granted without a TTL");
        break;
    }
    case CJ_TXN:
        return get_bool(o, "succeeded", &out->succeeded, why, whylen);
    case CJ_RANGE:
        if ((r = get_i64(o, "count", &out->count, NULL, why, whylen)))
            return r;
        if (json_object_object_get_ex(o, "kvs", &f) && (r = parse_kvs(f, prefix, out, false, why, whylen)))
            return r;
        if ((int64_t)out->nkv > out->count)
            FAIL("more kvs than \"count\"");
        break;
    case CJ_WATCH:
        if ((r = get_bool(o, "created", &out->created, why, whylen)) ||
            (r = get_bool(o, "canceled", &out->canceled, why, whylen)) ||
            (r = get_i64(o, "compact_revision", &out->compact_rev, NULL, why, whylen)))
            return r;
        if (json_object_object_get_ex(o, "events", &f) && (r = parse_kvs(f, prefix, out, true, why, whylen)))
            return r;
        for (size_t i = 1; i < out->nkv; i++)
            if (out->kvs[i].mod_rev < out->kvs[i - 1].mod_rev)
                FAIL("events out of revision order");
        break;
    default:
        break;
    }
    return 0;
}

int cj_parse_obj(enum cj_kind kind, json_object *o, const char *prefix, struct cj_reply *out, char *why,
                 size_t whylen)
{
    memset(out, 0, sizeof(*out));
    if (whylen)
        why[0] = '\0';
    int r = parse_obj(kind, o, prefix, out, why, whylen);
    if (r == -ENOMEM)
        snprintf(why, whylen, "out of memory");
    return r;
}

static bool only_space(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \r\n\t", p[i]) || !p[i])
            return false;
    return true;
}

int cj_parse(enum cj_kind kind, const char *buf, size_t len, const char *prefix, struct cj_reply *out,
             char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    if (kind < 0 || kind >= CJ_NKINDS || len > INT_MAX) {
        snprintf(why, whylen, "not a reply");
        return -EPROTO;
    }
    json_tokener *tok = json_tokener_new();
    if (!tok) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    json_object *o = json_tokener_parse_ex(tok, buf, (int)len);
    int r;
    if (!o || json_tokener_get_error(tok) != json_tokener_success) {
        snprintf(why, whylen, "not JSON");
        r = -EPROTO;
    } else if (!only_space(buf + tok->char_offset, len - (size_t)tok->char_offset)) {
        snprintf(why, whylen, "bytes after the JSON object");
        r = -EPROTO;
    } else {
        r = cj_parse_obj(kind, o, prefix, out, why, whylen);
    }
    json_object_put(o);
    json_tokener_free(tok);
    return r;
}

void cj_reply_free(struct cj_reply *r)
{
    for (size_t i = 0; i < r->nkv; i++) {
        free((char *)r->kvs[i].key);
        free((char *)r->kvs[i].val);
    }
    free(r->kvs);
    free(r->evs);
    memset(r, 0, sizeof(*r));
}
