/* memx-simxsd — the sim platform's XenStore: a small daemon that speaks the
 * real xs_wire protocol on DIR/xenstore.sock, so the stock libxenstore (and
 * with it every MemX process on the sim platform) talks to it unchanged via
 * XENSTORED_PATH.
 *
 * What it mirrors from xenstored, because blkback/blkfront logic depends on it:
 *  - WRITE and MKDIR create missing parents; RM is recursive and succeeds when
 *    the node is already gone but its parent exists.
 *  - A watch on P fires once on registration (the initial event) and then for
 *    every change at or under P; removing a node also fires the watches set on
 *    its descendants (with the watch's own path).  Relative watches get
 *    relative event paths.
 *  - Transactions are optimistic: a transaction works on its own snapshot of
 *    the tree; a commit with writes fails with EAGAIN when anything else was
 *    committed since it started, otherwise its tree replaces the live one at
 *    once and its watch events fire.
 *  - Errors are XS_ERROR replies carrying the errno name.
 *  - A watch event that would exceed XENSTORE_PAYLOAD_MAX is dropped.
 *
 * Each connection is dom0 until it sends XS_CONTROL "memx-set-domid\0<id>\0"
 * (xp_open_sim does this), after which relative paths and GET_DOMAIN_PATH
 * resolve against /local/domain/<id> as they would for that guest.
 * Permissions are stored and returned but not enforced.
 *
 * Every message is validated (length <= XENSTORE_PAYLOAD_MAX, nul-terminated
 * arguments, path syntax); a malformed request gets EINVAL, an oversized
 * header or a client that stops reading is disconnected.
 */
#include "daemon.h"
#include "evloop.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <xen/io/xs_wire.h>

#define MAX_NODES        200000   /* whole store: a runaway client gets ENOSPC */
#define MAX_WATCHES      1024     /* per connection */
#define MAX_TXNS         64       /* per connection */
#define MAX_OUTBUF       (16u << 20)  /* a client that stops reading is dropped */

struct node {
    char *name;                 /* last path component; "" for the root */
    char *value;
    unsigned vlen;
    char *perms;                /* xs_wire perms list, "n0\0r5\0" */
    unsigned plen;
    uint64_t gen;               /* bumped when the child list changes (DIRECTORY_PART) */
    struct node *parent, *child, *next;
};

struct change {
    char *path;                 /* absolute */
    bool rm;
    struct change *next;
};

struct txn {
    uint32_t id;
    uint64_t start_commit;      /* store->commits when started */
    struct node *root;          /* private snapshot */
    struct change *changes, **changes_tail;
    struct txn *next;
};

struct watch {
    char *path;                 /* as the client gave it */
    char *abspath;              /* absolute, or "@..." */
    char *token;
    bool relative;
    struct watch *next;
};

struct conn {
    int fd;
    uint16_t domid;
    struct xsd_sockmsg hdr;
    unsigned hdr_got, body_got;
    char body[XENSTORE_PAYLOAD_MAX + 1];
    char *out;
    size_t out_len, out_off, out_cap;
    struct watch *watches;
    unsigned nwatches;
    struct txn *txns;
    unsigned ntxns;
    uint32_t next_txn_id;
    bool dead;                  /* closed by reap() once the current callback is done */
    struct conn *prev, *next;
};

struct store {
    struct evloop *el;
    struct node *root;
    unsigned nnodes;
    uint64_t commits;           /* bumped by every change to the live tree */
    uint64_t gen;
    struct conn *conns;
    int lfd, sfd;
    char sockpath[PATH_MAX];
};

static struct store S;

/* ---- tree ---------------------------------------------------------------- */

static struct node *node_new(struct node *parent, const char *name, size_t nlen)
{
    struct node *n = calloc(1, sizeof(*n));
    if (!n || !(n->name = strndup(name, nlen))) {
        free(n);
        return NULL;
    }
    n->value = strdup("");
    if (!n->value) {
        free(n->name);
        free(n);
        return NULL;
    }
    /* New nodes inherit the parent's permissions, as in xenstored. */
    const char *p = parent ? parent->perms : "n0";
    unsigned plen = parent ? parent->plen : 3;
    n->perms = malloc(plen);
    if (!n->perms) {
        free(n->value);
        free(n->name);
        free(n);
        return NULL;
    }
    memcpy(n->perms, p, plen);
    n->plen = plen;
    n->parent = parent;
    if (parent) {
        /* Creation order, as xenstored lists children. */
        struct node **tail = &parent->child;
        while (*tail)
            tail = &(*tail)->next;
        *tail = n;
        parent->gen = ++S.gen;
    }
    S.nnodes++;
    return n;
}

static void node_free(struct node *n)
{
    while (n->child) {
        struct node *c = n->child;
        n->child = c->next;
        node_free(c);
    }
    free(n->name);
    free(n->value);
    free(n->perms);
    free(n);
    S.nnodes--;
}

static void node_unlink(struct node *n)
{
    struct node **pp = &n->parent->child;
    while (*pp != n)
        pp = &(*pp)->next;
    *pp = n->next;
    n->parent->gen = ++S.gen;
}

static unsigned subtree_size(const struct node *n)
{
    unsigned k = 1;
    for (const struct node *c = n->child; c; c = c->next)
        k += subtree_size(c);
    return k;
}

static struct node *node_clone(const struct node *n, struct node *parent)
{
    struct node *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->parent = parent;
    c->gen = n->gen;
    c->vlen = n->vlen;
    c->plen = n->plen;
    c->name = strdup(n->name);
    c->value = malloc(n->vlen + 1);
    c->perms = malloc(n->plen);
    S.nnodes++;
    if (!c->name || !c->value || !c->perms) {
        node_free(c);
        return NULL;
    }
    memcpy(c->value, n->value, n->vlen + 1);
    memcpy(c->perms, n->perms, n->plen);
    struct node **tail = &c->child;
    for (const struct node *k = n->child; k; k = k->next) {
        struct node *kc = node_clone(k, c);
        if (!kc) {
            node_free(c);
            return NULL;
        }
        *tail = kc;
        tail = &kc->next;
    }
    return c;
}

static struct node *child_find(const struct node *n, const char *name, size_t len)
{
    for (struct node *c = n->child; c; c = c->next)
        if (strlen(c->name) == len && memcmp(c->name, name, len) == 0)
            return c;
    return NULL;
}

/* Walks an absolute, validated path; with create, makes missing nodes. */
static struct node *lookup(struct node *root, const char *path, bool create)
{
    struct node *n = root;
    const char *p = path + 1;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        struct node *c = child_find(n, p, len);
        if (!c) {
            if (!create) {
                errno = ENOENT;
                return NULL;
            }
            if (S.nnodes >= MAX_NODES) {
                errno = ENOSPC;
                return NULL;
            }
            if (!(c = node_new(n, p, len))) {
                errno = ENOMEM;
                return NULL;
            }
        }
        n = c;
        p += len;
        if (*p == '/')
            p++;
    }
    return n;
}

/* ---- paths ---------------------------------------------------------------- */

static bool path_chars_ok(const char *p)
{
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '/' || *p == '_' || *p == '@'))
            return false;
    return true;
}

/* Turns a client path into a canonical absolute one (caller frees); NULL with
 * errno EINVAL when the path is malformed. */
static char *canon(const struct conn *c, const char *path, bool allow_special)
{
    size_t len = strlen(path);
    if (allow_special && path[0] == '@') {
        if (len > XENSTORE_REL_PATH_MAX || !path_chars_ok(path))
            goto bad;
        return strdup(path);
    }
    if (len == 0 || !path_chars_ok(path) || strstr(path, "//") ||
        (len > 1 && path[len - 1] == '/'))
        goto bad;
    char *abs;
    if (path[0] == '/') {
        if (len > XENSTORE_ABS_PATH_MAX)
            goto bad;
        abs = strdup(path);
    } else {
        if (len > XENSTORE_REL_PATH_MAX || asprintf(&abs, "/local/domain/%u/%s", c->domid, path) < 0)
            goto bad;
    }
    return abs;
bad:
    errno = EINVAL;
    return NULL;
}

/* Is child at or under parent? */
static bool is_under(const char *child, const char *parent)
{
    size_t n = strlen(parent);
    if (strcmp(parent, "/") == 0)
        return child[0] == '/';
    return strncmp(child, parent, n) == 0 && (child[n] == '\0' || child[n] == '/');
}

/* ---- output --------------------------------------------------------------- */

static void conn_close(struct conn *c);
static void conn_cb(struct evloop *el, int fd, unsigned events, void *arg);

static void conn_flush(struct conn *c);

static int send_msg(struct conn *c, uint32_t type, uint32_t req_id, uint32_t tx_id,
                    const void *p1, size_t l1, const void *p2, size_t l2)
{
    struct xsd_sockmsg h = { .type = type, .req_id = req_id, .tx_id = tx_id, .len = (uint32_t)(l1 + l2) };
    size_t need = c->out_len + sizeof(h) + l1 + l2;
    if (need - c->out_off > MAX_OUTBUF) {
        if (!c->dead)
            mx_warn("simxsd conn %d (dom%u): not reading its replies, disconnecting", c->fd, c->domid);
        c->dead = true;
        return -1;
    }
    if (need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < need)
            cap *= 2;
        char *o = realloc(c->out, cap);
        if (!o)
            return -1;
        c->out = o;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, &h, sizeof(h));
    if (l1)
        memcpy(c->out + c->out_len + sizeof(h), p1, l1);
    if (l2)
        memcpy(c->out + c->out_len + sizeof(h) + l1, p2, l2);
    c->out_len = need;
    return 0;
}

static void conn_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                c->out_off = c->out_len = 0;   /* peer gone: the read side will notice */
            break;
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    evloop_mod_fd(S.el, c->fd, EV_READ | (c->out_len ? EV_WRITE : 0));
}

static const char *errno_name(int e)
{
    switch (e) {
    case EINVAL: return "EINVAL";
    case EACCES: return "EACCES";
    case EEXIST: return "EEXIST";
    case EISDIR: return "EISDIR";
    case ENOENT: return "ENOENT";
    case ENOMEM: return "ENOMEM";
    case ENOSPC: return "ENOSPC";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ENOSYS: return "ENOSYS";
    case EBUSY: return "EBUSY";
    case EAGAIN: return "EAGAIN";
    case E2BIG: return "E2BIG";
    case EPERM: return "EPERM";
    default: return "EIO";
    }
}

static int reply_err(struct conn *c, int e)
{
    const char *s = errno_name(e);
    return send_msg(c, XS_ERROR, c->hdr.req_id, c->hdr.tx_id, s, strlen(s) + 1, NULL, 0);
}

static int reply(struct conn *c, const void *p, size_t len)
{
    return send_msg(c, c->hdr.type, c->hdr.req_id, c->hdr.tx_id, p, len, NULL, 0);
}

static int reply_ok(struct conn *c)
{
    return reply(c, "OK", 3);
}

/* ---- watches -------------------------------------------------------------- */

static void watch_event(struct conn *c, const struct watch *w, const char *abspath)
{
    const char *p = abspath;
    char prefix[32];
    if (w->relative) {
        /* Relative watches see relative paths, as in xenstored. */
        int n = snprintf(prefix, sizeof(prefix), "/local/domain/%u/", c->domid);
        if (strncmp(abspath, prefix, (size_t)n) == 0)
            p = abspath + n;
    }
    /* A long token and a long path under the watch can exceed a message: libxenstore would
     * refuse it (E2BIG) and lose the connection, so it is dropped, as xenstored does. */
    if (strlen(p) + 1 + strlen(w->token) + 1 > XENSTORE_PAYLOAD_MAX) {
        static struct mx_ratelimit rl;
        if (mx_ratelimit_ok(&rl, 10000))
            mx_warn("simxsd conn %d (dom%u): watch event for %.64s... over %u bytes, dropped "
                    "(%u more since the last report)", c->fd, c->domid, p, XENSTORE_PAYLOAD_MAX,
                    rl.last_suppressed);
        return;
    }
    if (send_msg(c, XS_WATCH_EVENT, 0, 0, p, strlen(p) + 1, w->token, strlen(w->token) + 1) == 0)
        conn_flush(c);
}

/* A change at path fires watches at or above it; a removal also fires the
 * watches set below the removed node. */
static void fire(const char *path, bool rm)
{
    for (struct conn *c = S.conns; c; c = c->next)
        for (struct watch *w = c->watches; w; w = w->next) {
            if (w->abspath[0] == '@')
                continue;
            if (is_under(path, w->abspath))
                watch_event(c, w, path);
            else if (rm && is_under(w->abspath, path))
                watch_event(c, w, w->abspath);
        }
}

/* ---- request handlers ----------------------------------------------------- */

struct args {
    const char *s[8];
    unsigned n;
};

/* Splits the payload into nul-terminated strings; the payload must end in a
 * nul (every string-only request does). */
static int split_args(const struct conn *c, struct args *a, unsigned min, unsigned max)
{
    a->n = 0;
    if (c->hdr.len == 0 || c->body[c->hdr.len - 1] != '\0')
        return -1;
    for (unsigned off = 0; off < c->hdr.len;) {
        if (a->n == max)
            return -1;
        a->s[a->n++] = c->body + off;
        off += (unsigned)strlen(c->body + off) + 1;
    }
    return a->n >= min ? 0 : -1;
}

static void record(struct txn *t, const char *path, bool rm)
{
    if (!t) {
        S.commits++;
        fire(path, rm);
        return;
    }
    struct change *ch = calloc(1, sizeof(*ch));
    if (!ch || !(ch->path = strdup(path))) {
        free(ch);
        return;
    }
    *t->changes_tail = ch;
    t->changes_tail = &ch->next;
}

static void txn_free(struct txn *t)
{
    while (t->changes) {
        struct change *ch = t->changes;
        t->changes = ch->next;
        free(ch->path);
        free(ch);
    }
    if (t->root)
        node_free(t->root);
    free(t);
}

static struct txn *txn_find(struct conn *c, uint32_t id)
{
    for (struct txn *t = c->txns; t; t = t->next)
        if (t->id == id)
            return t;
    return NULL;
}

static int do_txn_start(struct conn *c)
{
    if (c->ntxns >= MAX_TXNS)
        return reply_err(c, ENOSPC);
    if (S.nnodes + subtree_size(S.root) > MAX_NODES)
        return reply_err(c, ENOSPC);
    struct txn *t = calloc(1, sizeof(*t));
    if (!t || !(t->root = node_clone(S.root, NULL))) {
        free(t);
        return reply_err(c, ENOMEM);
    }
    do
        t->id = ++c->next_txn_id;
    while (t->id == 0 || txn_find(c, t->id));
    t->start_commit = S.commits;
    t->changes_tail = &t->changes;
    t->next = c->txns;
    c->txns = t;
    c->ntxns++;
    char buf[16];
    int n = snprintf(buf, sizeof(buf), "%u", t->id);
    return reply(c, buf, (size_t)n + 1);
}

static int do_txn_end(struct conn *c, struct txn *t, const struct args *a)
{
    bool commit;
    if (strcmp(a->s[0], "T") == 0)
        commit = true;
    else if (strcmp(a->s[0], "F") == 0)
        commit = false;
    else
        return reply_err(c, EINVAL);
    struct txn **pp = &c->txns;
    while (*pp != t)
        pp = &(*pp)->next;
    *pp = t->next;
    c->ntxns--;
    int err = 0;
    if (commit && t->changes) {
        if (S.commits != t->start_commit) {
            err = EAGAIN;
        } else {
            node_free(S.root);
            S.root = t->root;
            t->root = NULL;
            S.commits++;
            for (struct change *ch = t->changes; ch; ch = ch->next)
                fire(ch->path, ch->rm);
        }
    }
    txn_free(t);
    return err ? reply_err(c, err) : reply_ok(c);
}

static int do_read(struct conn *c, struct node *root, const char *path)
{
    struct node *n = lookup(root, path, false);
    if (!n)
        return reply_err(c, errno);
    return reply(c, n->value, n->vlen);
}

static int do_write(struct conn *c, struct txn *t, struct node *root)
{
    const char *path = c->body;
    size_t plen = strnlen(c->body, c->hdr.len);
    if (plen == c->hdr.len)
        return reply_err(c, EINVAL);
    char *abs = canon(c, path, false);
    if (!abs)
        return reply_err(c, EINVAL);
    struct node *n = lookup(root, abs, true);
    if (!n) {
        int e = errno;
        free(abs);
        return reply_err(c, e);
    }
    unsigned vlen = c->hdr.len - (unsigned)plen - 1;
    char *v = malloc(vlen + 1);
    if (!v) {
        free(abs);
        return reply_err(c, ENOMEM);
    }
    memcpy(v, c->body + plen + 1, vlen);
    v[vlen] = '\0';
    free(n->value);
    n->value = v;
    n->vlen = vlen;
    record(t, abs, false);
    free(abs);
    return reply_ok(c);
}

static int do_mkdir(struct conn *c, struct txn *t, struct node *root, const char *path)
{
    if (lookup(root, path, false))
        return reply_ok(c);
    if (!lookup(root, path, true))
        return reply_err(c, errno);
    record(t, path, false);
    return reply_ok(c);
}

static int do_rm(struct conn *c, struct txn *t, struct node *root, const char *path)
{
    if (strcmp(path, "/") == 0)
        return reply_err(c, EINVAL);
    struct node *n = lookup(root, path, false);
    if (!n) {
        /* Already gone is fine as long as the parent exists (xenstored). */
        char *parent = strdup(path);
        if (!parent)
            return reply_err(c, ENOMEM);
        char *slash = strrchr(parent, '/');
        if (slash == parent)
            slash[1] = '\0';
        else
            *slash = '\0';
        bool ok = lookup(root, parent, false) != NULL;
        free(parent);
        return ok ? reply_ok(c) : reply_err(c, ENOENT);
    }
    node_unlink(n);
    node_free(n);
    record(t, path, true);
    return reply_ok(c);
}

static int do_directory(struct conn *c, struct node *root, const char *path, const char *offstr)
{
    struct node *n = lookup(root, path, false);
    if (!n)
        return reply_err(c, errno);
    char *buf = malloc(XENSTORE_PAYLOAD_MAX + 1);
    if (!buf)
        return reply_err(c, ENOMEM);
    size_t len = 0, skip = 0, total = 0;
    int r;
    if (offstr) {
        /* DIRECTORY_PART: "<gen>\0" then whole names from byte offset off; a
         * final empty string marks the end of the list. */
        char *end;
        errno = 0;
        unsigned long off = strtoul(offstr, &end, 10);
        if (errno || *end || end == offstr) {
            free(buf);
            return reply_err(c, EINVAL);
        }
        len = (size_t)snprintf(buf, 32, "%" PRIu64, n->gen) + 1;
        skip = off;
    }
    bool complete = true;
    for (struct node *k = n->child; k; k = k->next) {
        size_t l = strlen(k->name) + 1;
        if (total < skip) {
            total += l;
            continue;
        }
        total += l;
        if (len + l + (offstr ? 1 : 0) > XENSTORE_PAYLOAD_MAX) {
            complete = false;
            break;
        }
        memcpy(buf + len, k->name, l);
        len += l;
    }
    if (!offstr && !complete)
        r = reply_err(c, E2BIG);
    else {
        if (offstr && complete)
            buf[len++] = '\0';
        r = reply(c, buf, len);
    }
    free(buf);
    return r;
}

static int perm_ok(const char *p)
{
    if (!strchr("nrwb", p[0]) || !p[1])
        return 0;
    for (const char *q = p + 1; *q; q++)
        if (*q < '0' || *q > '9')
            return 0;
    return strlen(p + 1) <= 5;
}

static int do_set_perms(struct conn *c, struct txn *t, struct node *root)
{
    struct args a;
    /* path + at least one perm; the count is bounded by the payload only, so
     * parse by hand rather than through split_args' small array. */
    if (c->hdr.len == 0 || c->body[c->hdr.len - 1] != '\0')
        return reply_err(c, EINVAL);
    a.s[0] = c->body;
    unsigned off = (unsigned)strlen(c->body) + 1;
    if (off >= c->hdr.len)
        return reply_err(c, EINVAL);
    for (unsigned o = off; o < c->hdr.len; o += (unsigned)strlen(c->body + o) + 1)
        if (!perm_ok(c->body + o))
            return reply_err(c, EINVAL);
    char *abs = canon(c, a.s[0], false);
    if (!abs)
        return reply_err(c, EINVAL);
    struct node *n = lookup(root, abs, false);
    if (!n) {
        free(abs);
        return reply_err(c, ENOENT);
    }
    char *p = malloc(c->hdr.len - off);
    if (!p) {
        free(abs);
        return reply_err(c, ENOMEM);
    }
    memcpy(p, c->body + off, c->hdr.len - off);
    free(n->perms);
    n->perms = p;
    n->plen = c->hdr.len - off;
    record(t, abs, false);
    free(abs);
    return reply_ok(c);
}

static int do_watch(struct conn *c, const struct args *a)
{
    if (c->nwatches >= MAX_WATCHES)
        return reply_err(c, ENOSPC);
    for (struct watch *w = c->watches; w; w = w->next)
        if (strcmp(w->path, a->s[0]) == 0 && strcmp(w->token, a->s[1]) == 0)
            return reply_err(c, EEXIST);
    char *abs = canon(c, a->s[0], true);
    if (!abs)
        return reply_err(c, EINVAL);
    struct watch *w = calloc(1, sizeof(*w));
    if (!w || !(w->path = strdup(a->s[0])) || !(w->token = strdup(a->s[1]))) {
        if (w)
            free(w->path);
        free(w);
        free(abs);
        return reply_err(c, ENOMEM);
    }
    w->abspath = abs;
    w->relative = a->s[0][0] != '/' && a->s[0][0] != '@';
    w->next = c->watches;
    c->watches = w;
    c->nwatches++;
    int r = reply_ok(c);
    /* xenstored fires every new watch once, so clients can read initial state. */
    if (r == 0)
        r = send_msg(c, XS_WATCH_EVENT, 0, 0, w->path, strlen(w->path) + 1, w->token, strlen(w->token) + 1);
    return r;
}

static void watch_free(struct watch *w)
{
    free(w->path);
    free(w->abspath);
    free(w->token);
    free(w);
}

static int do_unwatch(struct conn *c, const struct args *a)
{
    for (struct watch **pp = &c->watches; *pp; pp = &(*pp)->next) {
        struct watch *w = *pp;
        if (strcmp(w->path, a->s[0]) == 0 && strcmp(w->token, a->s[1]) == 0) {
            *pp = w->next;
            watch_free(w);
            c->nwatches--;
            return reply_ok(c);
        }
    }
    return reply_err(c, ENOENT);
}

static void reset_watches(struct conn *c)
{
    while (c->watches) {
        struct watch *w = c->watches;
        c->watches = w->next;
        watch_free(w);
    }
    c->nwatches = 0;
}

static int do_control(struct conn *c, const struct args *a)
{
    if (strcmp(a->s[0], "memx-set-domid") == 0 && a->n == 2) {
        char *end;
        errno = 0;
        unsigned long id = strtoul(a->s[1], &end, 10);
        if (errno || *end || end == a->s[1] || id >= 0x7ff0)
            return reply_err(c, EINVAL);
        c->domid = (uint16_t)id;
        return reply_ok(c);
    }
    return reply_err(c, EINVAL);
}

/* Handles the message in c->hdr/c->body; -1 means drop the connection. */
static int handle(struct conn *c)
{
    struct txn *t = NULL;
    struct node *root = S.root;
    uint32_t type = c->hdr.type;
    if (c->hdr.tx_id && type != XS_WATCH && type != XS_UNWATCH) {
        t = txn_find(c, c->hdr.tx_id);
        if (!t)
            return reply_err(c, ENOENT);
        root = t->root;
    }
    struct args a;
    switch (type) {
    case XS_READ: case XS_MKDIR: case XS_RM: case XS_DIRECTORY: case XS_GET_PERMS:
    case XS_DIRECTORY_PART: {
        unsigned want = type == XS_DIRECTORY_PART ? 2 : 1;
        if (split_args(c, &a, want, want) < 0)
            return reply_err(c, EINVAL);
        char *abs = canon(c, a.s[0], false);
        if (!abs)
            return reply_err(c, EINVAL);
        int r;
        struct node *n;
        switch (type) {
        case XS_READ: r = do_read(c, root, abs); break;
        case XS_MKDIR: r = do_mkdir(c, t, root, abs); break;
        case XS_RM: r = do_rm(c, t, root, abs); break;
        case XS_DIRECTORY: r = do_directory(c, root, abs, NULL); break;
        case XS_DIRECTORY_PART: r = do_directory(c, root, abs, a.s[1]); break;
        default:
            n = lookup(root, abs, false);
            r = n ? reply(c, n->perms, n->plen) : reply_err(c, ENOENT);
            break;
        }
        free(abs);
        return r;
    }
    case XS_WRITE:
        return do_write(c, t, root);
    case XS_SET_PERMS:
        return do_set_perms(c, t, root);
    case XS_WATCH:
    case XS_UNWATCH:
        if (split_args(c, &a, 2, 2) < 0)
            return reply_err(c, EINVAL);
        return type == XS_WATCH ? do_watch(c, &a) : do_unwatch(c, &a);
    case XS_TRANSACTION_START:
        if (t)
            return reply_err(c, EBUSY);
        return do_txn_start(c);
    case XS_TRANSACTION_END:
        if (!t || split_args(c, &a, 1, 1) < 0)
            return reply_err(c, EINVAL);
        return do_txn_end(c, t, &a);
    case XS_GET_DOMAIN_PATH: {
        if (split_args(c, &a, 1, 1) < 0)
            return reply_err(c, EINVAL);
        char *end;
        errno = 0;
        unsigned long id = strtoul(a.s[0], &end, 10);
        if (errno || *end || end == a.s[0] || id > 0xffff)
            return reply_err(c, EINVAL);
        char buf[40];
        int n = snprintf(buf, sizeof(buf), "/local/domain/%lu", id);
        return reply(c, buf, (size_t)n + 1);
    }
    case XS_RESET_WATCHES:
        reset_watches(c);
        return reply_ok(c);
    case XS_CONTROL:
        if (split_args(c, &a, 1, 2) < 0)
            return reply_err(c, EINVAL);
        return do_control(c, &a);
    case XS_IS_DOMAIN_INTRODUCED:
        return reply(c, "T", 2);
    default:
        return reply_err(c, ENOSYS);
    }
}

/* ---- connections ---------------------------------------------------------- */

static void conn_close(struct conn *c)
{
    evloop_del_fd(S.el, c->fd);
    close(c->fd);
    reset_watches(c);
    while (c->txns) {
        struct txn *t = c->txns;
        c->txns = t->next;
        txn_free(t);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        S.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->out);
    free(c);
}

/* Connections die in the middle of watch fan-out; they are freed here, after
 * the callback that marked them, so no list walk sees a freed conn. */
static void reap(void)
{
    for (struct conn *c = S.conns, *nx; c; c = nx) {
        nx = c->next;
        if (c->dead)
            conn_close(c);
    }
}

static void conn_read(struct conn *c, int fd);

static void conn_cb(struct evloop *el, int fd, unsigned events, void *arg)
{
    struct conn *c = arg;
    if ((events & EV_WRITE) && !c->dead)
        conn_flush(c);
    if ((events & EV_READ) && !c->dead)
        conn_read(c, fd);
    reap();
}

static void conn_read(struct conn *c, int fd)
{
    for (int rounds = 0; rounds < 64; rounds++) {
        ssize_t n;
        if (c->hdr_got < sizeof(c->hdr)) {
            n = recv(fd, (char *)&c->hdr + c->hdr_got, sizeof(c->hdr) - c->hdr_got, MSG_DONTWAIT);
        } else {
            n = c->hdr.len > c->body_got
                ? recv(fd, c->body + c->body_got, c->hdr.len - c->body_got, MSG_DONTWAIT) : 0;
            if (c->hdr.len == 0)
                n = 0;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            c->dead = true;
            return;
        }
        if (n == 0 && (c->hdr_got < sizeof(c->hdr) || c->hdr.len > c->body_got)) {
            c->dead = true;          /* EOF */
            return;
        }
        if (c->hdr_got < sizeof(c->hdr)) {
            c->hdr_got += (unsigned)n;
            if (c->hdr_got < sizeof(c->hdr))
                continue;
            if (c->hdr.len > XENSTORE_PAYLOAD_MAX) {
                mx_warn("simxsd conn %d (dom%u): message length %u over %u, disconnecting",
                        fd, c->domid, c->hdr.len, XENSTORE_PAYLOAD_MAX);
                c->dead = true;
                return;
            }
            if (c->hdr.len)
                continue;
        } else {
            c->body_got += (unsigned)n;
            if (c->body_got < c->hdr.len)
                continue;
        }
        c->body[c->hdr.len] = '\0';
        int r = handle(c);
        c->hdr_got = c->body_got = 0;
        if (r < 0) {
            c->dead = true;
            return;
        }
        conn_flush(c);
    }
}

static void listen_cb(struct evloop *el, int fd, unsigned events, void *arg)
{
    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0)
        return;
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(cfd);
        return;
    }
    c->fd = cfd;
    if (evloop_add_fd(el, cfd, EV_READ, conn_cb, c) < 0) {
        close(cfd);
        free(c);
        return;
    }
    c->next = S.conns;
    if (S.conns)
        S.conns->prev = c;
    S.conns = c;
    mx_debug("simxsd: client on fd %d", cfd);
}

static void signal_cb(struct evloop *el, int fd, unsigned events, void *arg)
{
    int sig = memx_daemon_signal(fd);
    if (sig)
        mx_info("simxsd %s: signal %d, exiting", S.sockpath, sig);
    evloop_stop(el);
}

static int seed_tree(void)
{
    S.root = node_new(NULL, "", 0);
    struct node *d0 = S.root ? lookup(S.root, "/local/domain/0", true) : NULL;
    struct node *id = d0 ? lookup(S.root, "/local/domain/0/domid", true) : NULL;
    struct node *nm = id ? lookup(S.root, "/local/domain/0/name", true) : NULL;
    if (!nm || !lookup(S.root, "/tool", true))
        return -1;
    free(id->value);
    free(nm->value);
    id->value = strdup("0");
    id->vlen = 1;
    nm->value = strdup("Domain-0");
    nm->vlen = 8;
    return id->value && nm->value ? 0 : -1;
}

static int open_listener(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path)) {
        mx_err("simxsd: socket path %s is too long", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        mx_err("simxsd: %s: another memx-simxsd is already serving it", path);
        close(fd);
        return -1;
    }
    close(fd);
    unlink(path);        /* a stale socket from a daemon that died */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
        mx_err("simxsd: %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: memx-simxsd --dir DIR [--pidfile FILE] [--log-level LEVEL]\n"
            "The sim platform's XenStore daemon: serves the xs_wire protocol on\n"
            "DIR/xenstore.sock until SIGTERM/SIGINT.  Clients reach it with\n"
            "XENSTORED_PATH=DIR/xenstore.sock (xp_open_sim sets this itself).\n"
            "  --dir DIR          sim dir (created if missing)\n"
            "  --pidfile FILE     write the pid once the socket is listening\n"
            "  --log-level LEVEL  error, warn, info (default) or debug\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "pidfile", required_argument, NULL, 'p' },
        { "log-level", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL, *pidfile = NULL;
    int level = MX_LOG_INFO, o;
    while ((o = getopt_long(argc, argv, "d:p:l:hV", opts, NULL)) != -1) {
        switch (o) {
        case 'd': dir = optarg; break;
        case 'p': pidfile = optarg; break;
        case 'l':
            if ((level = mx_log_parse_level(optarg)) < 0) {
                fprintf(stderr, "memx-simxsd: --log-level: unknown level '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("memx-simxsd %s\n", PACKAGE_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!dir || optind != argc) {
        fprintf(stderr, "memx-simxsd: %s\n", dir ? "unexpected argument" : "--dir is required");
        return 2;
    }
    mx_log_init("memx-simxsd", (enum mx_log_level)level);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        mx_err("simxsd: cannot create sim dir %s: %s", dir, strerror(errno));
        return 1;
    }
    if (snprintf(S.sockpath, sizeof(S.sockpath), "%s/xenstore.sock", dir) >= (int)sizeof(S.sockpath)) {
        mx_err("simxsd: sim dir path %s is too long", dir);
        return 1;
    }
    S.el = evloop_new();
    S.sfd = S.el ? memx_daemon_signals(S.el, signal_cb, NULL) : -1;
    if (S.sfd < 0 || seed_tree() < 0) {
        mx_err("simxsd: start-up failed: %s", strerror(errno));
        return 1;
    }
    if ((S.lfd = open_listener(S.sockpath)) < 0)
        return 1;
    evloop_add_fd(S.el, S.lfd, EV_READ, listen_cb, NULL);
    if (pidfile) {
        FILE *f = fopen(pidfile, "w");
        if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) {
            mx_err("simxsd: cannot write pidfile %s: %s", pidfile, strerror(errno));
            unlink(S.sockpath);
            return 1;
        }
    }
    mx_info("simxsd %s: listening", S.sockpath);
    int rc = evloop_run(S.el);
    while (S.conns)
        conn_close(S.conns);
    unlink(S.sockpath);
    if (pidfile)
        unlink(pidfile);
    evloop_del_fd(S.el, S.lfd);
    evloop_del_fd(S.el, S.sfd);
    close(S.lfd);
    close(S.sfd);
    node_free(S.root);
    evloop_free(S.el);
    return rc ? 1 : 0;
}
