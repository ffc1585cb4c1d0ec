/* ckeys.c — the values MemX keeps in etcd (ckeys.h), to and from JSON.
 *
 * Decoders take nothing on trust: the value must be one JSON object whose
 * fields have the right types and ranges, names must fit and hold no '/',
 * and a name inside the value must agree with the key it was read from. */
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckeys.h"

/* ---- encoding ---- */

static int emit(json_object *o, bool bad, char *buf, size_t len)
{
    int n = -1;
    if (o && !bad) {
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        size_t sl = s ? strlen(s) : 0;
        if (s && sl < len && sl <= INT_MAX) {
            memcpy(buf, s, sl + 1);
            n = (int)sl;
        }
    }
    json_object_put(o);
    return n;
}

static void put(json_object *o, const char *k, json_object *v, bool *bad)
{
    if (!o || !v || json_object_object_add(o, k, v) < 0) {
        json_object_put(v);
        *bad = true;
    }
}

static json_object *hex16(uint64_t v)
{
    char s[17];
    snprintf(s, sizeof(s), "%016" PRIx64, v);
    return json_object_new_string(s);
}

int ck_server_encode(const struct ck_server *s, char *buf, size_t len)
{
    bool bad = false;
    json_object *o = json_object_new_object();
    put(o, "addr", json_object_new_string(s->addr), &bad);
    put(o, "capacity", json_object_new_uint64(s->capacity), &bad);
    put(o, "provider", json_object_new_string(s->provider), &bad);
    put(o, "incarnation", hex16(s->incarnation), &bad);
    put(o, "state", json_object_new_string(s->draining ? "draining" : "up"), &bad);
    return emit(o, bad, buf, len);
}

int ck_backend_encode(const struct ck_backend *b, char *buf, size_t len)
{
    bool bad = false;
    json_object *o = json_object_new_object();
    put(o, "node", json_object_new_string(b->node), &bad);
    put(o, "pid", json_object_new_int64(b->pid), &bad);
    return emit(o, bad, buf, len);
}

int ck_volume_encode(const struct ck_volume *v, char *buf, size_t len)
{
    bool bad = false;
    json_object *o = json_object_new_object();
    put(o, "vid", hex16(v->vid), &bad);
    put(o, "size", json_object_new_uint64(v->size), &bad);
    put(o, "epoch", json_object_new_uint64(v->epoch), &bad);
    return emit(o, bad, buf, len);
}

int ck_owner_encode(const struct ck_owner *ow, char *buf, size_t len)
{
    bool bad = false;
    json_object *o = json_object_new_object();
    put(o, "node", json_object_new_string(ow->node), &bad);
    put(o, "vid", hex16(ow->vid), &bad);
    put(o, "epoch", json_object_new_uint64(ow->epoch), &bad);
    return emit(o, bad, buf, len);
}

int ck_slab_encode(const struct ck_slab *s, char *buf, size_t len)
{
    bool bad = false;
    json_object *o = json_object_new_object(), *a = json_object_new_array();
    put(o, "size", json_object_new_uint64(s->size), &bad);
    for (int i = 0; i < s->nrep && i < CK_REPLICAS && a; i++) {
        json_object *r = json_object_new_string(s->replicas[i]);
        if (!r || json_object_array_add(a, r) < 0) {
            json_object_put(r);
            bad = true;
        }
    }
    put(o, "replicas", a, &bad);
    return emit(o, bad, buf, len);
}

/* ---- keys ---- */

static bool name_ok(const char *n, size_t max)
{
    size_t l = strlen(n);
    return l > 0 && l < max && !strchr(n, '/');
}

static int mkkey(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int mkkey(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

int ck_server_key(const char *addr, char *buf, size_t len)
{
    return name_ok(addr, CK_ADDR_MAX) ? mkkey(buf, len, CK_SERVERS "%s", addr) : -1;
}

int ck_backend_key(const char *node, char *buf, size_t len)
{
    return name_ok(node, CK_NODE_MAX) ? mkkey(buf, len, CK_BACKENDS "%s", node) : -1;
}

int ck_volume_key(const char *volume, char *buf, size_t len)
{
    return name_ok(volume, CK_NAME_MAX) ? mkkey(buf, len, CK_VOLUMES "%s", volume) : -1;
}

int ck_owner_key(const char *volume, char *buf, size_t len)
{
    return name_ok(volume, CK_NAME_MAX) ? mkkey(buf, len, CK_OWNERS "%s", volume) : -1;
}

int ck_slab_key(const char *node, uint64_t uid, char *buf, size_t len)
{
    return name_ok(node, CK_NODE_MAX) ? mkkey(buf, len, CK_SLABS "%s/%016" PRIx64, node, uid) : -1;
}

/* ---- decoding ---- */

struct dec {
    const char *key;
    char *why;
    size_t whylen;
    json_object *o;
};

static int why(struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int why(struct dec *d, const char *fmt, ...)
{
    char m[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    if (d->whylen)
        snprintf(d->why, d->whylen, "%.80s: %s", d->key ? d->key : "(no key)", m);
    return -1;
}

static int open_value(struct dec *d, const char *val, size_t vlen)
{
    d->o = NULL;
    if (!val || vlen > INT_MAX)
        return why(d, "no value");
    json_tokener *t = json_tokener_new();
    if (!t)
        return why(d, "out of memory");
    d->o = json_tokener_parse_ex(t, val, (int)vlen);
    enum json_tokener_error e = json_tokener_get_error(t);
    size_t off = (size_t)t->char_offset;
    json_tokener_free(t);
    for (size_t i = off; e == json_tokener_success && i < vlen; i++)
        if (!val[i] || !strchr(" \t\r\n", val[i]))
            return why(d, "bytes after the JSON object");
    if (e != json_tokener_success || !d->o)
        return why(d, "not JSON");
    if (!json_object_is_type(d->o, json_type_object))
        return why(d, "not a JSON object");
    return 0;
}

static json_object *field(struct dec *d, const char *k, json_type t, const char *what)
{
    json_object *f;
    if (!json_object_object_get_ex(d->o, k, &f)) {
        why(d, "no \"%s\"", k);
        return NULL;
    }
    if (!json_object_is_type(f, t)) {
        why(d, "\"%s\" is not %s", k, what);
        return NULL;
    }
    return f;
}

static int get_u64(struct dec *d, const char *k, uint64_t *v)
{
    json_object *f = field(d, k, json_type_int, "a number");
    if (!f)
        return -1;
    if (json_object_get_int64(f) < 0)
        return why(d, "\"%s\" is negative", k);
    *v = json_object_get_uint64(f);
    return 0;
}

static int get_str(struct dec *d, const char *k, char *out, size_t max, bool is_name)
{
    json_object *f = field(d, k, json_type_string, "a string");
    if (!f)
        return -1;
    const char *s = json_object_get_string(f);
    size_t l = strlen(s);
    if ((size_t)json_object_get_string_len(f) != l)
        return why(d, "\"%s\" holds a NUL", k);
    if (l == 0)
        return why(d, "\"%s\" is empty", k);
    if (l >= max)
        return why(d, "\"%s\" is longer than %zu bytes", k, max - 1);
    if (is_name && strchr(s, '/'))
        return why(d, "\"%s\" holds a '/'", k);
    memcpy(out, s, l + 1);
    return 0;
}

static bool parse_hex16(const char *s, uint64_t *v)
{
    if (strlen(s) != 16 || strspn(s, "0123456789abcdefABCDEF") != 16)
        return false;
    *v = strtoull(s, NULL, 16);
    return true;
}

static int get_hex(struct dec *d, const char *k, uint64_t *v)
{
    json_object *f = field(d, k, json_type_string, "a string");
    if (!f)
        return -1;
    if (!parse_hex16(json_object_get_string(f), v))
        return why(d, "\"%s\" is not 16 hex digits", k);
    return 0;
}

/* The name after `kp` in the key: non-empty, short, no '/'. */
static int key_name(struct dec *d, const char *kp, char *out, size_t max)
{
    size_t pl = strlen(kp);
    if (!d->key || strncmp(d->key, kp, pl) != 0)
        return why(d, "not a %.*s key", (int)pl - 1, kp);
    const char *n = d->key + pl;
    if (!name_ok(n, max))
        return why(d, "the name is empty, too long or holds a '/'");
    memcpy(out, n, strlen(n) + 1);
    return 0;
}

static int done(struct dec *d, int r)
{
    json_object_put(d->o);
    d->o = NULL;
    return r;
}

int ck_server_decode(const char *key, const char *val, size_t vlen, struct ck_server *s, char *whyb,
                     size_t whylen)
{
    struct dec d = { key, whyb, whylen, NULL };
    char name[CK_ADDR_MAX], state[16];
    memset(s, 0, sizeof(*s));
    if (key_name(&d, CK_SERVERS, name, sizeof(name)) || open_value(&d, val, vlen) ||
        get_str(&d, "addr", s->addr, sizeof(s->addr), true) || get_u64(&d, "capacity", &s->capacity) ||
        get_str(&d, "provider", s->provider, sizeof(s->provider), false) ||
        get_hex(&d, "incarnation", &s->incarnation) || get_str(&d, "state", state, sizeof(state), true))
        return done(&d, -1);
    if (strcmp(state, "up") && strcmp(state, "draining"))
        return done(&d, why(&d, "\"state\" is not \"up\" or \"draining\""));
    if (strcmp(name, s->addr))
        return done(&d, why(&d, "\"addr\" is not the key's"));
    s->draining = !strcmp(state, "draining");
    return done(&d, 0);
}

int ck_backend_decode(const char *key, const char *val, size_t vlen, struct ck_backend *b, char *whyb,
                      size_t whylen)
{
    struct dec d = { key, whyb, whylen, NULL };
    char name[CK_NODE_MAX];
    uint64_t pid;
    memset(b, 0, sizeof(*b));
    if (key_name(&d, CK_BACKENDS, name, sizeof(name)) || open_value(&d, val, vlen) ||
        get_str(&d, "node", b->node, sizeof(b->node), true) || get_u64(&d, "pid", &pid))
        return done(&d, -1);
    if (pid > INT32_MAX)
        return done(&d, why(&d, "\"pid\" is out of range"));
    if (strcmp(name, b->node))
        return done(&d, why(&d, "\"node\" is not the key's"));
    b->pid = (int64_t)pid;
    return done(&d, 0);
}

int ck_volume_decode(const char *key, const char *val, size_t vlen, char name[CK_NAME_MAX], struct ck_volume *v,
                     char *whyb, size_t whylen)
{
    struct dec d = { key, whyb, whylen, NULL };
    memset(v, 0, sizeof(*v));
    if (key_name(&d, CK_VOLUMES, name, CK_NAME_MAX) || open_value(&d, val, vlen) ||
        get_hex(&d, "vid", &v->vid) || get_u64(&d, "size", &v->size) || get_u64(&d, "epoch", &v->epoch))
        return done(&d, -1);
    return done(&d, 0);
}

int ck_owner_decode(const char *key, const char *val, size_t vlen, char name[CK_NAME_MAX], struct ck_owner *o,
                    char *whyb, size_t whylen)
{
    struct dec d = { key, whyb, whylen, NULL };
    memset(o, 0, sizeof(*o));
    if (key_name(&d, CK_OWNERS, name, CK_NAME_MAX) || open_value(&d, val, vlen) ||
        get_str(&d, "node", o->node, sizeof(o->node), true) || get_hex(&d, "vid", &o->vid) ||
        get_u64(&d, "epoch", &o->epoch))
        return done(&d, -1);
    return done(&d, 0);
}

int ck_slab_decode(const char *key, const char *val, size_t vlen, char node[CK_NODE_MAX], uint64_t *uid,
                   struct ck_slab *s, char *whyb, size_t whylen)
{
    struct dec d = { key, whyb, whylen, NULL };
    char rest[CK_NODE_MAX + 18];
    memset(s, 0, sizeof(*s));
    if (!key || strncmp(key, CK_SLABS, strlen(CK_SLABS)) != 0)
        return why(&d, "not a slabs key");
    const char *n = key + strlen(CK_SLABS), *sl = strchr(n, '/');
    if (!sl || sl == n || (size_t)(sl - n) >= CK_NODE_MAX)
        return why(&d, "the node is empty or too long");
    if (strlen(sl + 1) >= sizeof(rest) || !parse_hex16(sl + 1, uid))
        return why(&d, "the slab uid is not 16 hex digits");
    memcpy(node, n, (size_t)(sl - n));
    node[sl - n] = '\0';
    json_object *a;
    if (open_value(&d, val, vlen) || get_u64(&d, "size", &s->size) ||
        !(a = field(&d, "replicas", json_type_array, "an array")))
        return done(&d, -1);
    size_t nr = json_object_array_length(a);
    if (nr == 0 || nr > CK_REPLICAS)
        return done(&d, why(&d, "\"replicas\" holds %zu addresses (1 to %d)", nr, CK_REPLICAS));
    for (size_t i = 0; i < nr; i++) {
        json_object *r = json_object_array_get_idx(a, i);
        const char *rs = json_object_get_string(r);
        if (!json_object_is_type(r, json_type_string) || !name_ok(rs, CK_ADDR_MAX) ||
            (size_t)json_object_get_string_len(r) != strlen(rs))
            return done(&d, why(&d, "replica %zu is not an address", i));
        memcpy(s->replicas[i], rs, strlen(rs) + 1);
    }
    s->nrep = (int)nr;
    return done(&d, 0);
}
