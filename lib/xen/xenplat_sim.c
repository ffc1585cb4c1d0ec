/* xenplat_sim.c — the sim platform: Xen's grant-table and event-channel
 * semantics between ordinary Linux processes, no hypervisor.
 *
 * Grants.  Each domain owns DIR/gnt-<domid>, a sparse file mapped MAP_SHARED
 * by every process that touches it:
 *
 *     page 0                header (magic, geometry)
 *     pages 1..TABLE_PAGES  entry table: one struct gnt_entry per ref
 *     then                  one 4 KiB page per ref (ref r <-> page r)
 *
 * The file stands in for the hypervisor's grant table plus the granting
 * domain's memory.  A mapper or copier opens the granter's file and checks
 * every ref against the entry table exactly as Xen would (in range, in use,
 * granted to the caller's domid, writable only if not read-only), so a bad
 * ref from a hostile guest fails with a GNTST_* status and can only ever
 * reach pages of the domain that issued it.  Ref 0 is never handed out.
 * What sim cannot model: a granter process may scribble on (or truncate) its
 * own file, which the hypervisor's tables would not allow; treat sim as a
 * model of guest-controlled data (refs, page contents, rings), not as an
 * isolation boundary.  Unsharing does not wait for mappers to unmap (gntalloc
 * would); pages are zeroed when shared, so a stale mapping only ever sees the
 * same domain's memory.
 *
 * Event channels.  A port is a Unix datagram socket DIR/evtchn/<dom>-<port>.sock
 * with a metadata file <dom>-<port>.info ("unbound <remote-dom>" or
 * "bound <remote-dom> <remote-port>").  Binding to an unbound port creates
 * <rdom>-<rport>.peer naming the binder (O_EXCL: a port binds once), which is
 * how the allocating side learns its peer.  A notify is one datagram; a full
 * socket buffer means the event is already pending.  All ports of an xp sit in
 * one epoll fd (the pollable handle), edge-triggered: each datagram that
 * arrives reports its port once.  Masking is a flag here, not an epoll
 * re-arm, so the common path costs no epoll_ctl: reporting a port sets
 * masked (Xen's mask-on-delivery) and drains its socket with one recvmmsg;
 * unmask clears the flag.  An edge that arrives while masked is left in the
 * socket and remembered (held); unmask then re-arms the port with
 * EPOLL_CTL_MOD, which re-checks readiness, so the event fires after unmask
 * as Xen's would.  A spurious edge (its datagram was drained with an earlier
 * one) finds an empty socket and is not reported.
 */
#include "xenplat_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <xenstore.h>
#include <xen/grant_table.h>

#include "log.h"

#define GNT_MAGIC        0x4d584754u      /* "MXGT" */
#define GNT_VERSION      1u
#define GNT_ENTRIES      16384u           /* refs per domain: 64 MiB of (sparse) pages */
#define GNT_TABLE_PAGES  (GNT_ENTRIES * sizeof(struct gnt_entry) / XP_PAGE_SIZE)
#define GNT_DATA_OFF     ((1 + GNT_TABLE_PAGES) * (size_t)XP_PAGE_SIZE)
#define GNT_FILE_SIZE    (GNT_DATA_OFF + (size_t)GNT_ENTRIES * XP_PAGE_SIZE)
#define EVT_MAX_PORT     65535u
#define SIM_MAXEV        16               /* ports taken from epoll per call */

enum { GNT_FREE = 0, GNT_BUSY = 1, GNT_LIVE = 2 };

struct gnt_hdr {
    uint32_t magic, version, nr_entries, data_off;
};

struct gnt_entry {
    /* Written by the granter only.  It claims a FREE entry with a CAS, fills
     * the fields, then publishes with a store-release of GNT_LIVE; readers
     * load-acquire state before reading the fields (pairs with that release). */
    _Atomic uint32_t state;
    uint16_t grantee;
    uint8_t  readonly;
    uint8_t  pad;
    int32_t  owner_pid;     /* lets a new sharer reclaim refs of a dead process */
    uint32_t pad2;
};

_Static_assert(sizeof(struct gnt_entry) == 16, "gnt_entry must tile the table pages");

/* A domain's grant file, mapped whole. */
struct gfile {
    uint16_t domid;
    int fd;
    dev_t dev;
    ino_t ino;
    char *base;
    struct gfile *next;
};

struct region {                 /* a range returned by gnt_map or gnt_share */
    char *addr;
    uint32_t count;
    uint32_t *refs;             /* share only: the refs to release */
    struct region *next;
};

struct port {
    uint32_t port;
    int fd;
    bool masked;                /* reported and not unmasked yet */
    bool held;                  /* an edge came while masked: re-arm on unmask */
    bool have_peer;
    struct sockaddr_un peer;
    struct port *next;
};

struct sim {
    char *dir;
    struct gfile *own;          /* this domain's grant file */
    struct gfile *peers;        /* other domains' files, opened on first use */
    struct region *maps, *shares;
    int epfd;
    /* The last epoll_wait in sim_evtchn_pending returned nothing more to
     * look at: the next call may answer EAGAIN without asking the kernel
     * again (callers loop until EAGAIN; a later edge makes epfd readable, so
     * the loop comes back). */
    bool idle;
    unsigned nready;            /* ports epoll reported, not yet looked at */
    uint32_t ready[SIM_MAXEV];
    struct port *ports;
};

static struct sim *S_(struct xp *xp) { return xp->priv; }

/* ---- grant files ------------------------------------------------------- */

static struct gnt_entry *gents(const struct gfile *g)
{
    return (struct gnt_entry *)(g->base + XP_PAGE_SIZE);
}

static char *gpage(const struct gfile *g, uint32_t ref)
{
    return g->base + GNT_DATA_OFF + (size_t)ref * XP_PAGE_SIZE;
}

static void gfile_close(struct gfile *g)
{
    munmap(g->base, GNT_FILE_SIZE);
    close(g->fd);
    free(g);
}

/* Opens DIR/gnt-<domid>; create: initialise it if new (the owning domain). */
static struct gfile *gfile_open(const char *dir, uint16_t domid, bool create)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/gnt-%u", dir, domid);
    int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
    if (fd < 0)
        return NULL;
    struct stat st;
    /* Concurrent first opens by processes of one domain: the lock makes one
     * of them initialise the file while the others wait. */
    if (flock(fd, LOCK_EX) < 0 || fstat(fd, &st) < 0)
        goto fail;
    if (create && st.st_size == 0 && ftruncate(fd, (off_t)GNT_FILE_SIZE) < 0)
        goto fail;
    if (fstat(fd, &st) < 0)
        goto fail;
    if ((size_t)st.st_size != GNT_FILE_SIZE) {
        errno = EINVAL;
        goto fail;
    }
    char *base = mmap(NULL, GNT_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        goto fail;
    struct gnt_hdr *h = (struct gnt_hdr *)base;
    if (create && h->magic == 0) {
        h->version = GNT_VERSION;
        h->nr_entries = GNT_ENTRIES;
        h->data_off = (uint32_t)GNT_DATA_OFF;
        /* Ref 0 is never valid: park it BUSY for good. */
        atomic_store_explicit(&((struct gnt_entry *)(base + XP_PAGE_SIZE))[0].state, GNT_BUSY,
                              memory_order_relaxed);
        h->magic = GNT_MAGIC;
    }
    /* Geometry is fixed by this code, not taken from the file. */
    if (h->magic != GNT_MAGIC || h->version != GNT_VERSION || h->nr_entries != GNT_ENTRIES ||
        h->data_off != GNT_DATA_OFF) {
        munmap(base, GNT_FILE_SIZE);
        errno = EINVAL;
        goto fail;
    }
    flock(fd, LOCK_UN);
    struct gfile *g = calloc(1, sizeof(*g));
    if (!g) {
        munmap(base, GNT_FILE_SIZE);
        errno = ENOMEM;
        goto fail;
    }
    g->domid = domid;
    g->fd = fd;
    g->dev = st.st_dev;
    g->ino = st.st_ino;
    g->base = base;
    return g;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return NULL;
}

/* The granter's file as this process sees it; refresh reopens it if the file
 * at that path was replaced (a new sim dir generation). */
static struct gfile *peer_get(struct sim *s, uint16_t domid, bool refresh)
{
    if (s->own->domid == domid)
        return s->own;
    struct gfile **pp = &s->peers;
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->domid == domid)
            break;
    if (*pp && refresh) {
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof(path), "%s/gnt-%u", s->dir, domid);
        if (stat(path, &st) < 0 || st.st_ino != (*pp)->ino || st.st_dev != (*pp)->dev) {
            struct gfile *old = *pp;
            *pp = old->next;
            gfile_close(old);
        }
    }
    for (struct gfile *g = s->peers; g; g = g->next)
        if (g->domid == domid)
            return g;
    struct gfile *g = gfile_open(s->dir, domid, false);
    if (!g)
        return NULL;
    g->next = s->peers;
    s->peers = g;
    return g;
}

/* Xen's checks for one ref; 0 or a GNTST_* code. */
static int check_ref(const struct gfile *g, uint32_t ref, uint16_t me, bool write)
{
    if (ref == 0 || ref >= GNT_ENTRIES)
        return GNTST_bad_gntref;
    const struct gnt_entry *e = &gents(g)[ref];
    /* Pairs with the store-release in sim_gnt_share. */
    if (atomic_load_explicit(&e->state, memory_order_acquire) != GNT_LIVE)
        return GNTST_bad_gntref;
    if (e->grantee != me)
        return GNTST_permission_denied;
    if (write && e->readonly)
        return GNTST_permission_denied;
    return GNTST_okay;
}

/* Maps the pages of refs (all valid) from g's file into one fresh range. */
static char *map_pages(const struct gfile *g, uint32_t count, const uint32_t *refs, int prot)
{
    size_t len = (size_t)count * XP_PAGE_SIZE;
    char *addr = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (addr == MAP_FAILED)
        return NULL;
    for (uint32_t i = 0; i < count; i++) {
        void *p = mmap(addr + (size_t)i * XP_PAGE_SIZE, XP_PAGE_SIZE, prot, MAP_SHARED | MAP_FIXED,
                       g->fd, (off_t)(GNT_DATA_OFF + (size_t)refs[i] * XP_PAGE_SIZE));
        if (p == MAP_FAILED) {
            int e = errno;
            munmap(addr, len);
            errno = e;
            return NULL;
        }
    }
    return addr;
}

static struct region *region_add(struct region **list, char *addr, uint32_t count, uint32_t *refs)
{
    struct region *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->addr = addr;
    r->count = count;
    r->refs = refs;
    r->next = *list;
    *list = r;
    return r;
}

static struct region *region_take(struct region **list, void *addr, uint32_t count)
{
    for (struct region **pp = list; *pp; pp = &(*pp)->next)
        if ((*pp)->addr == addr && (*pp)->count == count) {
            struct region *r = *pp;
            *pp = r->next;
            return r;
        }
    return NULL;
}

static void *sim_gnt_map(struct xp *xp, uint16_t domid, uint32_t count, const uint32_t *refs, bool writable)
{
    struct sim *s = S_(xp);
    if (count == 0 || count > GNT_ENTRIES) {
        errno = EINVAL;
        return NULL;
    }
    struct gfile *g = peer_get(s, domid, true);
    if (!g) {
        errno = ESRCH;
        return NULL;
    }
    for (uint32_t i = 0; i < count; i++)
        if (check_ref(g, refs[i], xp->domid, writable) != GNTST_okay) {
            mx_debug("sim gnt: dom%u cannot map ref %u of dom%u", xp->domid, refs[i], domid);
            errno = EINVAL;
            return NULL;
        }
    char *addr = map_pages(g, count, refs, PROT_READ | (writable ? PROT_WRITE : 0));
    if (!addr)
        return NULL;
    if (!region_add(&s->maps, addr, count, NULL)) {
        munmap(addr, (size_t)count * XP_PAGE_SIZE);
        errno = ENOMEM;
        return NULL;
    }
    return addr;
}

static int sim_gnt_unmap(struct xp *xp, void *addr, uint32_t count)
{
    struct region *r = region_take(&S_(xp)->maps, addr, count);
    if (!r) {
        errno = EINVAL;
        return -1;
    }
    munmap(r->addr, (size_t)r->count * XP_PAGE_SIZE);
    free(r);
    return 0;
}

static int sim_gnt_copy(struct xp *xp, uint32_t count, struct xp_gcopy *segs)
{
    struct sim *s = S_(xp);
    int rc = 0;
    for (uint32_t i = 0; i < count; i++) {
        struct xp_gcopy *c = &segs[i];
        if ((uint32_t)c->offset + c->len > XP_PAGE_SIZE) {
            c->status = GNTST_bad_copy_arg;
        } else {
            struct gfile *g = peer_get(s, c->domid, false);
            c->status = g ? (int16_t)check_ref(g, c->ref, xp->domid, c->to_guest) : GNTST_bad_domain;
            if (c->status == GNTST_bad_gntref && g != s->own) {
                /* The cached file may be an older generation of that domain. */
                g = peer_get(s, c->domid, true);
                c->status = g ? (int16_t)check_ref(g, c->ref, xp->domid, c->to_guest) : GNTST_bad_domain;
            }
            if (c->status == GNTST_okay) {
                char *page = gpage(g, c->ref) + c->offset;
                if (c->to_guest)
                    memcpy(page, c->local, c->len);
                else
                    memcpy(c->local, page, c->len);
            }
        }
        if (c->status != GNTST_okay)
            rc = -1;
    }
    if (rc)
        errno = EINVAL;
    return rc;
}

static bool pid_dead(int32_t pid)
{
    return pid > 0 && kill(pid, 0) < 0 && errno == ESRCH;
}

/* Claims one entry (state -> BUSY) or returns 0 when the table is full. */
static uint32_t claim_entry(struct gfile *g, uint32_t *hint)
{
    struct gnt_entry *e = gents(g);
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t k = 0; k < GNT_ENTRIES - 1; k++) {
            uint32_t ref = 1 + (*hint + k) % (GNT_ENTRIES - 1);
            uint32_t want = pass == 0 ? GNT_FREE : GNT_LIVE;
            if (pass == 1 && (atomic_load_explicit(&e[ref].state, memory_order_acquire) != GNT_LIVE ||
                              !pid_dead(e[ref].owner_pid)))
                continue;
            if (atomic_compare_exchange_strong_explicit(&e[ref].state, &want, GNT_BUSY,
                                                        memory_order_acq_rel, memory_order_relaxed)) {
                *hint = ref;
                return ref;
            }
        }
    return 0;
}

static void release_entry(struct gfile *g, uint32_t ref)
{
    /* Release: our last use of the page and fields happen before reuse. */
    atomic_store_explicit(&gents(g)[ref].state, GNT_FREE, memory_order_release);
}

static void *sim_gnt_share(struct xp *xp, uint16_t domid, uint32_t count, uint32_t *refs, bool writable)
{
    struct sim *s = S_(xp);
    struct gfile *g = s->own;
    if (count == 0 || count >= GNT_ENTRIES) {
        errno = EINVAL;
        return NULL;
    }
    uint32_t *mine = calloc(count, sizeof(*mine));
    if (!mine) {
        errno = ENOMEM;
        return NULL;
    }
    uint32_t hint = (uint32_t)getpid() * 7919u;
    for (uint32_t i = 0; i < count; i++) {
        if (!(mine[i] = claim_entry(g, &hint))) {
            for (uint32_t j = 0; j < i; j++)
                release_entry(g, mine[j]);
            free(mine);
            mx_warn("sim gnt: dom%u grant table full (%u refs)", xp->domid, GNT_ENTRIES);
            errno = ENOSPC;
            return NULL;
        }
    }
    char *addr = map_pages(g, count, mine, PROT_READ | PROT_WRITE);
    if (!addr || !region_add(&s->shares, addr, count, mine)) {
        int e = addr ? ENOMEM : errno;
        if (addr)
            munmap(addr, (size_t)count * XP_PAGE_SIZE);
        for (uint32_t j = 0; j < count; j++)
            release_entry(g, mine[j]);
        free(mine);
        errno = e;
        return NULL;
    }
    /* Shared pages start zeroed, as gntalloc's do. */
    memset(addr, 0, (size_t)count * XP_PAGE_SIZE);
    for (uint32_t i = 0; i < count; i++) {
        struct gnt_entry *e = &gents(g)[mine[i]];
        e->grantee = domid;
        e->readonly = !writable;
        e->owner_pid = (int32_t)getpid();
        /* Publishes the fields above; pairs with the load-acquire in check_ref. */
        atomic_store_explicit(&e->state, GNT_LIVE, memory_order_release);
        refs[i] = mine[i];
    }
    return addr;
}

static int sim_gnt_unshare(struct xp *xp, void *addr, uint32_t count)
{
    struct sim *s = S_(xp);
    struct region *r = region_take(&s->shares, addr, count);
    if (!r) {
        errno = EINVAL;
        return -1;
    }
    munmap(r->addr, (size_t)r->count * XP_PAGE_SIZE);
    for (uint32_t i = 0; i < r->count; i++)
        release_entry(s->own, r->refs[i]);
    free(r->refs);
    free(r);
    return 0;
}

/* ---- event channels ---------------------------------------------------- */

static int evt_path(const struct sim *s, char *buf, size_t len, uint16_t dom, uint32_t port, const char *ext)
{
    int n = snprintf(buf, len, "%s/evtchn/%u-%u.%s", s->dir, dom, port, ext);
    if (n < 0 || (size_t)n >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static int evt_sockaddr(const struct sim *s, struct sockaddr_un *sa, uint16_t dom, uint32_t port)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    return evt_path(s, sa->sun_path, sizeof(sa->sun_path), dom, port, "sock");
}

static int write_file_excl(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    if (n != (ssize_t)strlen(text)) {
        unlink(path);
        errno = EIO;
        return -1;
    }
    return 0;
}

static int read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

static struct port *port_find(struct sim *s, uint32_t port)
{
    for (struct port *p = s->ports; p; p = p->next)
        if (p->port == port)
            return p;
    return NULL;
}

static void port_files_rm(const struct sim *s, uint16_t dom, uint32_t port)
{
    char path[PATH_MAX];
    static const char *const ext[] = { "sock", "peer", "info" };
    for (unsigned i = 0; i < 3; i++)
        if (evt_path(s, path, sizeof(path), dom, port, ext[i]) == 0)
            unlink(path);
}

/* Allocates a port number (claiming its .info file with info) and binds its
 * socket; returns the new port, registered in the epoll set. */
static struct port *port_new(struct xp *xp, const char *info)
{
    struct sim *s = S_(xp);
    char path[PATH_MAX];
    uint32_t num = 0;
    for (uint32_t n = 1; n <= EVT_MAX_PORT && !num; n++) {
        if (evt_path(s, path, sizeof(path), xp->domid, n, "info") < 0)
            return NULL;
        if (write_file_excl(path, info) == 0)
            num = n;
        else if (errno != EEXIST)
            return NULL;
    }
    if (!num) {
        errno = ENOSPC;
        return NULL;
    }
    struct port *p = calloc(1, sizeof(*p));
    struct sockaddr_un sa;
    if (!p)
        goto fail;
    p->fd = -1;
    if (evt_sockaddr(s, &sa, xp->domid, num) < 0)
        goto fail;
    unlink(sa.sun_path);        /* left by a process that died holding this number */
    p->port = num;
    p->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0)
        goto fail;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u32 = num };
    if (bind(p->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, p->fd, &ev) < 0)
        goto fail;
    p->next = s->ports;
    s->ports = p;
    return p;
fail:;
    int e = errno;
    if (p && p->fd >= 0)
        close(p->fd);
    free(p);
    port_files_rm(s, xp->domid, num);
    errno = e;
    return NULL;
}

static void port_free(struct xp *xp, struct port *p)
{
    struct sim *s = S_(xp);
    char path[PATH_MAX], info[64];
    unsigned rdom, rport;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, p->fd, NULL);
    close(p->fd);
    /* Closing a bound end leaves the remote port unbound again (as on Xen),
     * so its allocator may be bound anew. */
    if (evt_path(s, path, sizeof(path), xp->domid, p->port, "info") == 0 &&
        read_small(path, info, sizeof(info)) == 0 &&
        sscanf(info, "bound %u %u", &rdom, &rport) == 2 &&
        evt_path(s, path, sizeof(path), (uint16_t)rdom, rport, "peer") == 0)
        unlink(path);
    port_files_rm(s, xp->domid, p->port);
    free(p);
}

static int sim_evtchn_fd(struct xp *xp)
{
    return S_(xp)->epfd;
}

static int sim_evtchn_alloc_unbound(struct xp *xp, uint16_t domid)
{
    char info[32];
    snprintf(info, sizeof(info), "unbound %u\n", domid);
    struct port *p = port_new(xp, info);
    return p ? (int)p->port : -1;
}

static int sim_evtchn_bind_interdomain(struct xp *xp, uint16_t domid, uint32_t remote_port)
{
    struct sim *s = S_(xp);
    char path[PATH_MAX], info[64];
    unsigned want;
    if (remote_port == 0 || remote_port > EVT_MAX_PORT ||
        evt_path(s, path, sizeof(path), domid, remote_port, "info") < 0 ||
        read_small(path, info, sizeof(info)) < 0 ||
        sscanf(info, "unbound %u", &want) != 1 || want != xp->domid) {
        mx_debug("sim evtchn: dom%u cannot bind port %u of dom%u", xp->domid, remote_port, domid);
        errno = EINVAL;
        return -1;
    }
    snprintf(info, sizeof(info), "bound %u %u\n", domid, remote_port);
    struct port *p = port_new(xp, info);
    if (!p)
        return -1;
    if (evt_sockaddr(s, &p->peer, domid, remote_port) == 0)
        p->have_peer = true;
    /* Tell the remote end who its peer is; O_EXCL makes the binding unique. */
    char peer[32];
    snprintf(peer, sizeof(peer), "%u %u\n", xp->domid, p->port);
    if (evt_path(s, path, sizeof(path), domid, remote_port, "peer") < 0 || write_file_excl(path, peer) < 0) {
        int e = errno == EEXIST ? EBUSY : errno;
        s->ports = p->next;
        /* Our .info must not make port_free unlink the other binder's .peer. */
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, p->fd, NULL);
        close(p->fd);
        port_files_rm(s, xp->domid, p->port);
        free(p);
        errno = e;
        return -1;
    }
    return (int)p->port;
}

static int sim_evtchn_unbind(struct xp *xp, uint32_t port)
{
    struct sim *s = S_(xp);
    for (struct port **pp = &s->ports; *pp; pp = &(*pp)->next)
        if ((*pp)->port == port) {
            struct port *p = *pp;
            *pp = p->next;
            port_free(xp, p);
            return 0;
        }
    errno = EINVAL;
    return -1;
}

static int sim_evtchn_notify(struct xp *xp, uint32_t port)
{
    struct sim *s = S_(xp);
    struct port *p = port_find(s, port);
    if (!p) {
        errno = EINVAL;
        return -1;
    }
    if (!p->have_peer) {
        char path[PATH_MAX], peer[32];
        unsigned dom, rport;
        if (evt_path(s, path, sizeof(path), xp->domid, port, "peer") < 0 ||
            read_small(path, peer, sizeof(peer)) < 0 || sscanf(peer, "%u %u", &dom, &rport) != 2)
            return 0;           /* still unbound: Xen drops the event silently */
        if (evt_sockaddr(s, &p->peer, (uint16_t)dom, rport) < 0)
            return 0;
        p->have_peer = true;
    }
    char b = 1;
    if (sendto(p->fd, &b, 1, MSG_DONTWAIT, (struct sockaddr *)&p->peer, sizeof(p->peer)) < 0) {
        if (errno == ECONNREFUSED || errno == ENOENT) {
            /* The peer went away; it may be re-bound by someone else later. */
            mx_debug("sim evtchn: dom%u port %u: peer gone", xp->domid, port);
            p->have_peer = false;
        }
        /* EAGAIN/ENOBUFS: the peer's queue is full, so the event is pending. */
    }
    return 0;
}

/* Empties a port's socket; returns the number of datagrams taken. */
static unsigned drain(struct port *p)
{
    enum { BATCH = 32 };
    char buf[BATCH];
    struct iovec iov[BATCH];
    struct mmsghdr msg[BATCH];
    unsigned total = 0;
    for (;;) {
        for (unsigned i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){ .iov_base = &buf[i], .iov_len = 1 };
            msg[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
        }
        int n = recvmmsg(p->fd, msg, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return total;
        total += (unsigned)n;
        if (n < BATCH)
            return total;
    }
}

static int sim_evtchn_pending(struct xp *xp)
{
    struct sim *s = S_(xp);
    for (;;) {
        while (s->nready) {
            struct port *p = port_find(s, s->ready[--s->nready]);
            if (!p)
                continue;               /* unbound since */
            if (p->masked) {
                p->held = true;         /* its datagram stays queued until unmask */
                continue;
            }
            if (!drain(p))
                continue;               /* spurious: drained with an earlier edge */
            p->masked = true;
            return (int)p->port;
        }
        if (s->idle) {
            s->idle = false;
            errno = EAGAIN;
            return -1;
        }
        struct epoll_event ev[SIM_MAXEV];
        int n = epoll_wait(s->epfd, ev, SIM_MAXEV, 0);
        if (n <= 0) {
            if (n == 0)
                errno = EAGAIN;
            return -1;
        }
        /* Edge-triggered: every port reported now must be looked at, so
         * they are queued here and handed out one per call. */
        for (int k = 0; k < n; k++)
            s->ready[s->nready++] = ev[k].data.u32;
        s->idle = n < SIM_MAXEV;
    }
}

static int sim_evtchn_unmask(struct xp *xp, uint32_t port)
{
    struct sim *s = S_(xp);
    struct port *p = port_find(s, port);
    if (!p) {
        errno = EINVAL;
        return -1;
    }
    p->masked = false;
    if (!p->held)
        return 0;
    p->held = false;
    s->idle = false;
    /* MOD re-evaluates readiness: a datagram queued while masked fires now. */
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u32 = port };
    return epoll_ctl(s->epfd, EPOLL_CTL_MOD, p->fd, &ev);
}

/* ---- open/close -------------------------------------------------------- */

static void sim_close(struct xp *xp)
{
    struct sim *s = S_(xp);
    if (!s)
        return;
    while (s->ports) {
        struct port *p = s->ports;
        s->ports = p->next;
        port_free(xp, p);
    }
    while (s->shares) {
        struct region *r = s->shares;
        sim_gnt_unshare(xp, r->addr, r->count);
    }
    while (s->maps) {
        struct region *r = s->maps;
        sim_gnt_unmap(xp, r->addr, r->count);
    }
    while (s->peers) {
        struct gfile *g = s->peers;
        s->peers = g->next;
        gfile_close(g);
    }
    if (s->own)
        gfile_close(s->own);
    if (s->epfd >= 0)
        close(s->epfd);
    free(s->dir);
    free(s);
}

static const struct xp_ops sim_ops = {
    .name = "sim",
    .close = sim_close,
    .gnt_map = sim_gnt_map,
    .gnt_unmap = sim_gnt_unmap,
    .gnt_copy = sim_gnt_copy,
    .gnt_share = sim_gnt_share,
    .gnt_unshare = sim_gnt_unshare,
    .evtchn_fd = sim_evtchn_fd,
    .evtchn_bind_interdomain = sim_evtchn_bind_interdomain,
    .evtchn_alloc_unbound = sim_evtchn_alloc_unbound,
    .evtchn_unbind = sim_evtchn_unbind,
    .evtchn_notify = sim_evtchn_notify,
    .evtchn_pending = sim_evtchn_pending,
    .evtchn_unmask = sim_evtchn_unmask,
};

struct xp *xp_open_sim(const char *dir, uint16_t domid)
{
    char path[PATH_MAX];
    struct xp *xp = NULL;
    struct xs_handle *xs = NULL;
    int e;
    if (snprintf(path, sizeof(path), "%s/xenstore.sock", dir) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    /* libxenstore reads XENSTORED_PATH when it connects; socket-only so a sim
     * process on a real Xen host can never reach the real xenstored. */
    setenv("XENSTORED_PATH", path, 1);
    xs = xs_open(XS_OPEN_SOCKETONLY);
    if (!xs) {
        e = errno;
        mx_debug("sim: no memx-simxsd at %s: %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    /* Makes the daemon resolve relative paths as for domain domid. */
    char id[8];
    snprintf(id, sizeof(id), "%u", domid);
    char *ok = xs_control_command(xs, "memx-set-domid", id, (unsigned)strlen(id) + 1);
    if (!ok) {
        e = errno;
        goto fail;
    }
    free(ok);
    xp = xp_alloc(&sim_ops, xs, domid);
    struct sim *s = xp ? calloc(1, sizeof(*s)) : NULL;
    if (!s) {
        e = ENOMEM;
        goto fail;
    }
    xp->priv = s;
    s->epfd = -1;
    snprintf(path, sizeof(path), "%s/evtchn", dir);
    if (!(s->dir = strdup(dir)) || (mkdir(path, 0700) < 0 && errno != EEXIST) ||
        (s->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || !(s->own = gfile_open(dir, domid, true))) {
        e = errno;
        goto fail;
    }
    return xp;
fail:
    if (xp)
        xp_close(xp);
    else if (xs)
        xs_close(xs);
    errno = e;
    return NULL;
}
