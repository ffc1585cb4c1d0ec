/* xenplat_sim_gnt.c — the sim platform's grant tables (xenplat_sim_impl.h).
 *
 * Each domain owns DIR/gnt-<domid>, a sparse file mapped MAP_SHARED by every
 * process that touches it:
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
 */
#include "xenplat_sim_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xen/grant_table.h>

#include "log.h"

#define GNT_MAGIC        0x4d584754u      /* "MXGT" */
#define GNT_VERSION      1u
#define GNT_ENTRIES      16384u           /* refs per domain: 64 MiB of (sparse) pages */
#define GNT_TABLE_PAGES  (GNT_ENTRIES * sizeof(struct gnt_entry) / XP_PAGE_SIZE)
#define GNT_DATA_OFF     ((1 + GNT_TABLE_PAGES) * (size_t)XP_PAGE_SIZE)
#define GNT_FILE_SIZE    (GNT_DATA_OFF + (size_t)GNT_ENTRIES * XP_PAGE_SIZE)

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
    /* Pairs with the store-release in xp_sim_gnt_share. */
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

void *xp_sim_gnt_map(struct xp *xp, uint16_t domid, uint32_t count, const uint32_t *refs, bool writable)
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

int xp_sim_gnt_unmap(struct xp *xp, void *addr, uint32_t count)
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

int xp_sim_gnt_copy(struct xp *xp, uint32_t count, struct xp_gcopy *segs)
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

void *xp_sim_gnt_share(struct xp *xp, uint16_t domid, uint32_t count, uint32_t *refs, bool writable)
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

int xp_sim_gnt_unshare(struct xp *xp, void *addr, uint32_t count)
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

int xp_sim_gnt_open(struct sim *s, const char *dir, uint16_t domid)
{
    return (s->own = gfile_open(dir, domid, true)) ? 0 : -1;
}

void xp_sim_gnt_close(struct xp *xp)
{
    struct sim *s = S_(xp);
    while (s->shares) {
        struct region *r = s->shares;
        xp_sim_gnt_unshare(xp, r->addr, r->count);
    }
    while (s->maps) {
        struct region *r = s->maps;
        xp_sim_gnt_unmap(xp, r->addr, r->count);
    }
    while (s->peers) {
        struct gfile *g = s->peers;
        s->peers = g->next;
        gfile_close(g);
    }
    if (s->own)
        gfile_close(s->own);
    s->own = NULL;
}
