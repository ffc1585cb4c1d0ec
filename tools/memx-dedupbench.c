/* memx-dedupbench — the VM-creation workload behind `make bench-dedup`.
 *
 * Links the real volume layer, content index and pool client and talks to the
 * memory servers in the config (tools/bench-dedup.sh starts them on loopback).
 * The guest image is real bytes: the files named on the command line (a
 * kernel, its modules, a root filesystem's libraries), page by page as the
 * page cache holds them.  Each guest's memory is that image in its own
 * (seeded) page order, plus a unique fraction and zero pages; all guests
 * "boot together" (their writes interleave), then churn in steady state.
 *
 * One run is: boot, churn, QD1 writes of duplicate and of unique pages, and
 * a phase of unique pages only on a fresh volume (pure hashing and lookup
 * cost: nothing to share).  Runs with de-duplication on and off alternate
 * against the same pool, several rounds; figures are medians over rounds.
 * Savings are checked against the best any page-level de-duplication could
 * do with the same content (the distinct non-zero pages the guests hold), so
 * a shortfall of the index (missed hits) shows as "missed".
 */
#include "config.h"
#include "evloop.h"
#include "histo.h"
#include "log.h"
#include "pool.h"
#include "pool_config.h"
#include "volumes.h"
#include "dedup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG VOLUME_PAGE_SIZE
#define SPP (VOLUME_PAGE_SIZE / VOLUME_SECTOR_SIZE)
#define MAX_GUESTS 64
#define MAX_SRC 16
#define MAX_ROUNDS 32

/* Steady-state writes: shares (percent) of unique data, image pages, zeros, discards. */
struct mix {
    unsigned unique, image, zero, discard;
};

static struct {
    int guests;
    uint64_t guest_pages, image_pages;
    double unique, zero, churn;
    unsigned qd, io_pages, rounds, qd1_ops;
    long cache_pages;
    struct mix mix;
} opt = { 8, 0, 0, 0.05, 0.25, 0.25, 32, 8, 5, 2000, -1, { 35, 40, 20, 5 } };

/* ---- the image ------------------------------------------------------------ */

static uint8_t *image;          /* image_pages pages */
static uint64_t image_have, image_quota, files_read;
static struct {
    const char *path;
    uint64_t first, n, files;
    bool kernel;                /* the kernel or its modules (vmlinu*, lib/modules/) */
} src[MAX_SRC];
static int nsrc;

static void add_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    files_read++;
    src[nsrc - 1].files++;
    while (image_have < image_quota) {
        uint8_t *p = image + image_have * PG;
        ssize_t n = read(fd, p, PG);
        if (n <= 0)
            break;
        memset(p + n, 0, PG - (size_t)n);   /* a file's last page, as the page cache holds it */
        image_have++;
    }
    close(fd);
}

static void add_path(const char *path)
{
    struct stat st;
    if (image_have >= image_quota)
        return;
    if (path[0] == '@') {           /* a file listing one path a line */
        FILE *f = fopen(path + 1, "r");
        char line[4096];
        while (f && fgets(line, sizeof(line), f) && image_have < image_quota) {
            line[strcspn(line, "\n")] = '\0';
            if (line[0])
                add_path(line);
        }
        if (f)
            fclose(f);
        return;
    }
    if (lstat(path, &st) < 0)
        return;
    if (S_ISREG(st.st_mode)) {
        add_file(path);
        return;
    }
    if (!S_ISDIR(st.st_mode))
        return;
    struct dirent **ents;
    int n = scandir(path, &ents, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        if (strcmp(ents[i]->d_name, ".") && strcmp(ents[i]->d_name, "..")) {
            char sub[4096];
            snprintf(sub, sizeof(sub), "%s/%s", path, ents[i]->d_name);
            add_path(sub);
        }
        free(ents[i]);
    }
    free(ents);
}

static bool is_zero(const uint8_t *p) { return p[0] == 0 && memcmp(p, p + 1, PG - 1) == 0; }

/* Content classes of the image: canon[i] is the first image page equal to
 * page i (byte compared), so equal pages inside the image count once. */
static uint64_t *canon;
static bool *img_zero;

static void classify_image(void)
{
    canon = malloc(image_have * sizeof(*canon));
    img_zero = calloc(image_have, sizeof(*img_zero));
    size_t nb = 1;
    while (nb < 2 * image_have)
        nb <<= 1;
    uint64_t *tab = malloc(nb * sizeof(*tab));  /* open addressing: image index + 1, 0 empty */
    struct dedup_hash *h = malloc(image_have * sizeof(*h));
    if (!canon || !img_zero || !tab || !h)
        abort();
    memset(tab, 0, nb * sizeof(*tab));
    for (uint64_t i = 0; i < image_have; i++) {
        const uint8_t *p = image + i * PG;
        canon[i] = i;
        if ((img_zero[i] = is_zero(p)))
            continue;
        h[i] = dedup_hash(p);
        for (size_t s = h[i].lo & (nb - 1);; s = (s + 1) & (nb - 1)) {
            if (!tab[s]) {
                tab[s] = i + 1;
                break;
            }
            uint64_t j = tab[s] - 1;
            if (h[j].lo == h[i].lo && h[j].hi == h[i].hi && memcmp(image + j * PG, p, PG) == 0) {
                canon[i] = j;
                break;
            }
        }
    }
    free(tab);
    free(h);
}

/* ---- deterministic randomness ------------------------------------------- */

static uint64_t rng(uint64_t *s)
{
    uint64_t x = *s += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static void random_page(uint8_t *p, uint64_t *s)
{
    for (size_t i = 0; i < PG; i += 8) {
        uint64_t x = rng(s);
        memcpy(p + i, &x, 8);
    }
}

/* Guest g's page at idx: an image page index, UNIQUE, ZERO or NONE (discarded). */
#define UNIQUE UINT64_MAX
#define ZERO   (UINT64_MAX - 1)
#define NONE   (UINT64_MAX - 2)
static uint64_t *layout[MAX_GUESTS];

static void make_layout(int g)
{
    uint64_t n = opt.guest_pages, s = 1000 + (uint64_t)g;
    uint64_t *l = malloc(n * sizeof(*l));
    if (!l)
        abort();
    uint64_t nu = (uint64_t)(opt.unique * (double)n), nz = (uint64_t)(opt.zero * (double)n);
    uint64_t ni = n - nu - nz;
    for (uint64_t i = 0; i < n; i++)
        l[i] = i < ni ? i % image_have : i < ni + nu ? UNIQUE : ZERO;
    for (uint64_t i = n - 1; i > 0; i--) {     /* each guest lays its memory out its own way */
        uint64_t j = rng(&s) % (i + 1), t = l[i];
        l[i] = l[j];
        l[j] = t;
    }
    free(layout[g]);
    layout[g] = l;
}

/* What the guests hold now, and the fewest pages any page-level
 * de-duplication could store it in. */
struct ideal {
    uint64_t logical, zero, stored;
};

/* With reloc, image pages of kernel code (the kernel and its modules) count
 * as each guest's own: what a guest holds if its kernel is relocated at boot
 * (KASLR, modules at random addresses) and every such page differs. */
static bool *img_reloc;

static struct ideal ideal_now(int guests, bool reloc)
{
    struct ideal r = { 0, 0, 0 };
    bool *seen = calloc(image_have, sizeof(*seen)), *mine = calloc(image_have, sizeof(*mine));
    if (!seen || !mine)
        abort();
    for (int g = 0; g < guests; g++) {
        memset(mine, 0, image_have * sizeof(*mine));
        for (uint64_t i = 0; i < opt.guest_pages; i++) {
            uint64_t w = layout[g][i];
            if (w == NONE)
                continue;
            r.logical++;
            if (w == ZERO || (w != UNIQUE && img_zero[w]))
                r.zero++;
            else if (w == UNIQUE)
                r.stored++;
            else {
                bool *set = reloc && img_reloc[w] ? mine : seen;
                if (!set[canon[w]]) {
                    set[canon[w]] = true;
                    r.stored++;
                }
            }
        }
    }
    free(seen);
    free(mine);
    return r;
}

/* ---- the I/O driver ---------------------------------------------------------- */

struct io {
    struct bench *b;
    uint8_t *buf;
    uint64_t t0;
    bool busy;
};

struct bench {
    struct evloop *el;
    struct volumes *vs;
    struct volume *vol[MAX_GUESTS];
    struct io *ios;
    unsigned inflight, qd;
    uint64_t errors, bytes;
    struct histo lat;
};

static void on_io(void *arg, int status)
{
    struct io *io = arg;
    struct bench *b = io->b;
    histo_record(&b->lat, evloop_now_ns() - io->t0);
    if (status)
        b->errors++;
    io->busy = false;
    b->inflight--;
}

static struct io *free_io(struct bench *b)
{
    while (b->inflight >= b->qd)
        evloop_run_once(b->el, 100);
    for (unsigned i = 0; i < opt.qd; i++)
        if (!b->ios[i].busy)
            return &b->ios[i];
    abort();
}

static void drain(struct bench *b)
{
    while (b->inflight)
        evloop_run_once(b->el, 100);
}

/* Fills io->buf with guest g's pages [idx, idx+n) and writes them. */
static void write_layout(struct bench *b, int g, uint64_t idx, unsigned n, uint64_t *s)
{
    struct io *io = free_io(b);
    for (unsigned i = 0; i < n; i++) {
        uint64_t what = layout[g][idx + i];
        uint8_t *p = io->buf + (size_t)i * PG;
        if (what == ZERO)
            memset(p, 0, PG);
        else if (what == UNIQUE)
            random_page(p, s);
        else
            memcpy(p, image + what * PG, PG);
    }
    io->busy = true;
    io->t0 = evloop_now_ns();
    b->inflight++;
    b->bytes += (uint64_t)n * PG;
    volume_write(b->vol[g], idx * SPP, n * SPP, io->buf, on_io, io);
}

enum { P_UNIQUE, P_QD1_UNIQUE, P_BOOT, P_CHURN, P_QD1_DUP, NPHASE };
static const char *phase_name[NPHASE] = { "unique-only", "qd1-unique", "boot", "churn", "qd1-dup" };

struct result {
    double secs, mbps, cpu_us_per_mib;
    double p50, p99;            /* us */
    uint64_t errors;
    struct volumes_stats hs;
    struct ideal best;
};

static uint64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

static uint64_t phase_t0, phase_cpu0;

static void phase_begin(struct bench *b)
{
    histo_reset(&b->lat);
    b->bytes = b->errors = 0;
    phase_cpu0 = cpu_ns();
    phase_t0 = evloop_now_ns();
}

static void phase_end(struct bench *b, struct result *r)
{
    drain(b);
    r->secs = (double)(evloop_now_ns() - phase_t0) / 1e9;
    r->mbps = (double)b->bytes / r->secs / 1e6;
    r->cpu_us_per_mib = (double)(cpu_ns() - phase_cpu0) / 1e3 / ((double)b->bytes / (1 << 20));
    r->p50 = (double)histo_quantile(&b->lat, 0.50) / 1e3;
    r->p99 = (double)histo_quantile(&b->lat, 0.99) / 1e3;
    r->errors = b->errors;
    volumes_get_stats(b->vs, &r->hs);
}

/* Single-page writes at QD1 to random places of the guests: image pages the
 * guests already hold (duplicates when de-duplication is on), or unique ones. */
static void qd1_writes(struct bench *b, bool dup, int nvol, uint64_t *s)
{
    b->qd = 1;
    for (unsigned i = 0; i < opt.qd1_ops; i++) {
        int g = (int)(rng(s) % (uint64_t)nvol);
        uint64_t idx = rng(s) % opt.guest_pages, w;
        do
            w = rng(s) % image_have;
        while (img_zero[w]);
        layout[g][idx] = dup ? w : UNIQUE;
        write_layout(b, g, idx, 1, s);
    }
    drain(b);
    b->qd = opt.qd;
}

/* Lets the pool finish what the last run left (slabs given back to the
 * memory servers after a delete), so that no phase pays for another's. */
static void settle(struct evloop *el)
{
    uint64_t t0 = evloop_now_ms();
    while (evloop_now_ms() - t0 < 300)
        evloop_run_once(el, 10);
}

/* Guest 0's memory as unique pages only (the cost phases: nothing to share). */
static void layout_unique(void)
{
    free(layout[0]);
    layout[0] = malloc(opt.guest_pages * sizeof(*layout[0]));
    if (!layout[0])
        abort();
    for (uint64_t i = 0; i < opt.guest_pages; i++)
        layout[0][i] = UNIQUE;
}

/* Unique pages only (a volume filled, then overwritten at QD and at QD1):
 * every page hashed, looked up and indexed, none shared, the pool in the same
 * steady state with de-duplication on or off.  Then boot (all guests write
 * their memory, interleaved), churn with mix, and QD1 writes of duplicates. */
static int run(struct evloop *el, struct pool *pool, bool dedup, struct mix mix, struct result res[NPHASE])
{
    struct bench b = { .el = el, .qd = opt.qd };
    b.vs = volumes_new(pool, dedup);
    if (!b.vs)
        return -1;
    b.ios = calloc(opt.qd, sizeof(*b.ios));
    for (unsigned i = 0; i < opt.qd; i++) {
        b.ios[i].b = &b;
        b.ios[i].buf = malloc((size_t)opt.io_pages * PG);
    }
    char err[200];
    uint64_t s = 7;
    settle(el);
    b.vol[0] = volume_attach(b.vs, "unique", opt.guest_pages * PG, "bench", err, sizeof(err));
    if (!b.vol[0]) {
        fprintf(stderr, "memx-dedupbench: %s\n", err);
        return -1;
    }
    layout_unique();
    for (int rep = 0; rep < 5; rep++) {     /* a fill, then four overwrites measured */
        if (rep == 1)
            phase_begin(&b);
        for (uint64_t idx = 0; idx < opt.guest_pages; idx += opt.io_pages)
            write_layout(&b, 0, idx, opt.io_pages, &s);
        drain(&b);
    }
    phase_end(&b, &res[P_UNIQUE]);
    phase_begin(&b);
    qd1_writes(&b, false, 1, &s);
    phase_end(&b, &res[P_QD1_UNIQUE]);
    volume_detach(b.vol[0]);
    volume_delete(b.vs, "unique");
    settle(el);

    for (int g = 0; g < opt.guests; g++) {
        make_layout(g);
        char name[32];
        snprintf(name, sizeof(name), "guest%d", g);
        b.vol[g] = volume_attach(b.vs, name, opt.guest_pages * PG, "bench", err, sizeof(err));
        if (!b.vol[g]) {
            fprintf(stderr, "memx-dedupbench: %s\n", err);
            return -1;
        }
    }
    phase_begin(&b);
    for (uint64_t idx = 0; idx < opt.guest_pages; idx += opt.io_pages)
        for (int g = 0; g < opt.guests; g++) {
            unsigned n = (unsigned)(opt.guest_pages - idx < opt.io_pages ? opt.guest_pages - idx : opt.io_pages);
            write_layout(&b, g, idx, n, &s);
        }
    phase_end(&b, &res[P_BOOT]);
    res[P_BOOT].best = ideal_now(opt.guests, false);

    /* Steady state: guests rewrite parts of their memory with the mix. */
    uint64_t nreq = (uint64_t)(opt.churn * (double)opt.guest_pages * opt.guests / opt.io_pages);
    unsigned total = mix.unique + mix.image + mix.zero + mix.discard;
    phase_begin(&b);
    for (uint64_t i = 0; i < nreq; i++) {
        int g = (int)(rng(&s) % (uint64_t)opt.guests);
        uint64_t idx = rng(&s) % (opt.guest_pages / opt.io_pages) * opt.io_pages;
        uint64_t kind = rng(&s) % total;
        if (kind < mix.discard) {
            struct io *io = free_io(&b);
            io->busy = true;
            io->t0 = evloop_now_ns();
            b.inflight++;
            for (unsigned k = 0; k < opt.io_pages; k++)
                layout[g][idx + k] = NONE;
            volume_discard(b.vol[g], idx * SPP, (uint64_t)opt.io_pages * SPP, on_io, io);
            continue;
        }
        kind -= mix.discard;
        for (unsigned k = 0; k < opt.io_pages; k++)
            layout[g][idx + k] = kind < mix.unique ? UNIQUE : kind < mix.unique + mix.image ? rng(&s) % image_have : ZERO;
        write_layout(&b, g, idx, opt.io_pages, &s);
    }
    phase_end(&b, &res[P_CHURN]);
    res[P_CHURN].best = ideal_now(opt.guests, false);

    phase_begin(&b);
    qd1_writes(&b, true, opt.guests, &s);
    phase_end(&b, &res[P_QD1_DUP]);

    for (int g = 0; g < opt.guests; g++) {
        volume_detach(b.vol[g]);
        char name[32];
        snprintf(name, sizeof(name), "guest%d", g);
        volume_delete(b.vs, name);
    }

    for (unsigned i = 0; i < opt.qd; i++)
        free(b.ios[i].buf);
    free(b.ios);
    volumes_free(b.vs);
    return 0;
}

/* What the content index adds per page on the CPU, without the pool: a page
 * arrives (copied in, as the grant copy brings it into cache), is hashed and
 * looked up; a new page is then indexed and its bytes cached, a duplicate is
 * compared with the cached copy.  Returns ns per page beyond the copy. */
static volatile uint64_t index_sink;     /* keeps the loops' results alive */

static void index_cost(double *first_ns, double *unique_ns, double *dup_ns)
{
    uint64_t n = image_have < DEDUP_CACHE_PAGES ? image_have : DEDUP_CACHE_PAGES, sink = 0;
    uint8_t *buf = malloc(PG);
    struct dedup *d = dedup_new(DEDUP_CACHE_PAGES);
    pool_page_t c[4];
    if (!buf || !d)
        abort();
    uint64_t base = 0, uni, dup;
    for (int rep = 0; rep < 2; rep++) {
        uint64_t t0 = evloop_now_ns();
        for (uint64_t i = 0; i < n; i++) {
            memcpy(buf, image + i * PG, PG);
            __asm__ volatile("" ::: "memory");
            sink += buf[i % PG];
        }
        base = evloop_now_ns() - t0;
    }
    /* The first pass fills a fresh index and byte cache (a new backend), the
     * second one the same index once those pages were freed (steady state). */
    uint64_t first = 0;
    for (int rep = 0; rep < 2; rep++) {
        uint64_t t0 = evloop_now_ns();
        for (uint64_t i = 0; i < n; i++) {
            memcpy(buf, image + i * PG, PG);
            struct dedup_hash h = dedup_hash(buf);
            sink += dedup_lookup(d, h, c, 4);
            dedup_insert(d, h, i + 1, buf);
        }
        uni = evloop_now_ns() - t0;
        if (rep == 0) {
            first = uni;
            for (uint64_t i = 0; i < n; i++)
                dedup_forget(d, i + 1);
        }
    }
    uint64_t t0 = evloop_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        memcpy(buf, image + i * PG, PG);
        struct dedup_hash h = dedup_hash(buf);
        size_t k = dedup_lookup(d, h, c, 4);
        for (size_t j = 0; j < k; j++) {
            const void *b = dedup_cached(d, c[j]);
            if (b && memcmp(b, buf, PG) == 0) {
                sink++;
                break;
            }
        }
    }
    dup = evloop_now_ns() - t0;
    for (uint64_t i = 0; i < n; i++)
        dedup_forget(d, i + 1);
    dedup_free(d);
    free(buf);
    *first_ns = ((double)first - (double)base) / (double)n;
    *unique_ns = ((double)uni - (double)base) / (double)n;
    *dup_ns = ((double)dup - (double)base) / (double)n;
    index_sink = sink;
}

/* ---- report ------------------------------------------------------------------ */

static double pct(uint64_t a, uint64_t b) { return b ? 100.0 * (double)a / (double)b : 0.0; }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double mib(uint64_t pages) { return (double)pages * PG / (1 << 20); }

/* The cost of de-duplication where nothing is shared, measured so that load
 * from outside (other programs on the machine) hits both sides alike: two
 * volume tables on the one pool, one with de-duplication and one without,
 * each with a volume of unique pages, written in alternating slices (and, at
 * QD1, alternating single pages).  Ratios are per slice pair, medians. */
struct ab {
    double thr, thr_q1, thr_q3;     /* on/off throughput per slice pair */
    double mbps[2];                 /* [dedup] over all slices */
    double p50[2], p99[2];          /* [dedup] QD1 single-page write latency, us */
    unsigned slices;
};

#define AB_SLICE_PAGES 1024u

static int ab_cost(struct evloop *el, struct pool *pool, struct ab *out)
{
    static struct bench b[2];
    char err[200];
    uint64_t s = 11;
    for (int m = 0; m < 2; m++) {
        b[m] = (struct bench){ .el = el, .qd = opt.qd };
        if (!(b[m].vs = volumes_new(pool, m == 1)))
            return -1;
        b[m].ios = calloc(opt.qd, sizeof(*b[m].ios));
        for (unsigned i = 0; i < opt.qd; i++) {
            b[m].ios[i].b = &b[m];
            b[m].ios[i].buf = malloc((size_t)opt.io_pages * PG);
        }
        b[m].vol[0] = volume_attach(b[m].vs, m ? "ab-on" : "ab-off", opt.guest_pages * PG, "bench", err, sizeof(err));
        if (!b[m].vol[0]) {
            fprintf(stderr, "memx-dedupbench: %s\n", err);
            return -1;
        }
    }
    layout_unique();
    settle(el);
    for (int m = 0; m < 2; m++) {   /* fill: slabs allocated, the byte cache faulted in */
        for (uint64_t idx = 0; idx < opt.guest_pages; idx += opt.io_pages)
            write_layout(&b[m], 0, idx, opt.io_pages, &s);
        drain(&b[m]);
    }
    uint64_t per = AB_SLICE_PAGES < opt.guest_pages ? AB_SLICE_PAGES / opt.io_pages * opt.io_pages : opt.guest_pages;
    unsigned n = (unsigned)(4 * opt.guest_pages / per);
    double *ratio = malloc(n * sizeof(*ratio)), ns[2] = { 0, 0 };
    if (!ratio)
        abort();
    for (unsigned sl = 0; sl < n; sl++) {
        uint64_t first = sl * per % opt.guest_pages;
        double t[2];
        for (int k = 0; k < 2; k++) {
            int m = (int)((sl + (unsigned)k) % 2);     /* who goes first alternates too */
            uint64_t t0 = evloop_now_ns();
            for (uint64_t idx = first; idx < first + per; idx += opt.io_pages)
                write_layout(&b[m], 0, idx, opt.io_pages, &s);
            drain(&b[m]);
            t[m] = (double)(evloop_now_ns() - t0);
            ns[m] += t[m];
        }
        ratio[sl] = t[0] / t[1];
    }
    for (int m = 0; m < 2; m++) {
        out->mbps[m] = (double)n * (double)per * PG / (ns[m] / 1e9) / 1e6;
        histo_reset(&b[m].lat);
        b[m].qd = 1;
    }
    for (unsigned i = 0; i < 2 * opt.qd1_ops; i++) {
        struct bench *x = &b[i % 2];
        uint64_t idx = rng(&s) % opt.guest_pages;
        write_layout(x, 0, idx, 1, &s);
        drain(x);
    }
    for (int m = 0; m < 2; m++) {
        out->p50[m] = (double)histo_quantile(&b[m].lat, 0.50) / 1e3;
        out->p99[m] = (double)histo_quantile(&b[m].lat, 0.99) / 1e3;
    }
    out->slices = n;
    out->thr = median(ratio, n);                /* sorts ratio */
    out->thr_q1 = ratio[n / 4];
    out->thr_q3 = ratio[3 * n / 4];
    free(ratio);
    for (int m = 0; m < 2; m++) {
        volume_detach(b[m].vol[0]);
        volume_delete(b[m].vs, m ? "ab-on" : "ab-off");
        for (unsigned i = 0; i < opt.qd; i++)
            free(b[m].ios[i].buf);
        free(b[m].ios);
        volumes_free(b[m].vs);
    }
    settle(el);
    return 0;
}

/* Logical vs stored, the savings by kind, and how far from the best possible. */
static void print_savings(const char *what, const struct volumes_stats *on, uint64_t off_stored,
                          const struct ideal *best)
{
    printf("  %s\n", what);
    printf("    logical %7.1f MiB; stored: dedup off %7.1f MiB, dedup on %7.1f MiB, best possible %7.1f MiB\n",
           mib(on->logical_pages), mib(off_stored), mib(on->stored_pages), mib(best->stored));
    printf("    saved: zero pages %5.1f%%, duplicate pages %5.1f%%, total %5.1f%% (best possible %5.1f%%",
           pct(on->zero_pages, on->logical_pages), pct(on->dup_pages, on->logical_pages),
           pct(on->zero_pages + on->dup_pages, on->logical_pages), pct(best->logical - best->stored, best->logical));
    if (on->stored_pages >= best->stored)
        printf(", %llu pages missed)\n", (unsigned long long)(on->stored_pages - best->stored));
    else
        printf(")\n");
    if (on->logical_pages != best->logical || on->zero_pages != best->zero)
        printf("    warning: the volumes hold %llu logical / %llu zero pages, the workload wrote %llu / %llu\n",
               (unsigned long long)on->logical_pages, (unsigned long long)on->zero_pages,
               (unsigned long long)best->logical, (unsigned long long)best->zero);
}

static int parse_mix(const char *s, struct mix *m)
{
    return sscanf(s, "%u,%u,%u,%u", &m->unique, &m->image, &m->zero, &m->discard) == 4 &&
           m->unique + m->image + m->zero + m->discard > 0 ? 0 : -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: memx-dedupbench --config FILE [options] PATH...\n"
            "  PATH...              files or directories whose pages make the guest image (an equal share each);\n"
            "                       @FILE: the paths listed in FILE, one a line\n"
            "  --guests N           guests (volumes), default 8\n"
            "  --guest-size SIZE    memory per guest, default 32M\n"
            "  --unique F           per-guest unique fraction, default 0.05\n"
            "  --zero F             zero-page fraction, default 0.25\n"
            "  --churn F            steady-state writes as a fraction of all guest memory, default 0.25\n"
            "  --churn-mix U,I,Z,D  steady-state shares of unique, image, zero pages and discards, default 35,40,20,5;\n"
            "                       a second churn with the image share moved to unique (anonymous memory) also runs\n"
            "  --qd N               requests in flight, default 32\n"
            "  --io-pages N         pages per request, default 8\n"
            "  --rounds N           on/off alternations (medians are reported), default 5\n"
            "  --qd1-ops N          single-page QD1 writes per latency phase, default 2000\n"
            "  --cache-pages N      de-dup byte cache size (default %u; 0: compare by pool read)\n",
            DEDUP_CACHE_PAGES);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", 1, 0, 'c' }, { "guests", 1, 0, 'g' }, { "guest-size", 1, 0, 's' }, { "unique", 1, 0, 'u' },
        { "zero", 1, 0, 'z' }, { "churn", 1, 0, 'C' }, { "churn-mix", 1, 0, 'm' }, { "qd", 1, 0, 'q' },
        { "io-pages", 1, 0, 'p' }, { "rounds", 1, 0, 'r' }, { "qd1-ops", 1, 0, 'o' }, { "cache-pages", 1, 0, 'k' },
        { "help", 0, 0, 'h' }, { 0, 0, 0, 0 } };
    const char *config = NULL;
    uint64_t gsize = 32ull << 20;
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'g': opt.guests = atoi(optarg); break;
        case 's':
            if (memx_parse_size(optarg, &gsize) < 0) {
                fprintf(stderr, "memx-dedupbench: --guest-size '%s' is not a size\n", optarg);
                return 2;
            }
            break;
        case 'u': opt.unique = atof(optarg); break;
        case 'z': opt.zero = atof(optarg); break;
        case 'C': opt.churn = atof(optarg); break;
        case 'm':
            if (parse_mix(optarg, &opt.mix) < 0) {
                fprintf(stderr, "memx-dedupbench: --churn-mix '%s' is not U,I,Z,D\n", optarg);
                return 2;
            }
            break;
        case 'q': opt.qd = (unsigned)atoi(optarg); break;
        case 'p': opt.io_pages = (unsigned)atoi(optarg); break;
        case 'r': opt.rounds = (unsigned)atoi(optarg); break;
        case 'o': opt.qd1_ops = (unsigned)atoi(optarg); break;
        case 'k': opt.cache_pages = atol(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    opt.guest_pages = gsize / PG;
    if (!config || optind >= argc || argc - optind > MAX_SRC || opt.guests < 1 || opt.guests > MAX_GUESTS ||
        opt.qd < 1 || opt.io_pages < 1 || opt.unique < 0 || opt.zero < 0 || opt.unique + opt.zero >= 1 ||
        opt.guest_pages < 2ull * opt.io_pages || opt.guest_pages % opt.io_pages || opt.rounds < 1 ||
        opt.rounds > MAX_ROUNDS) {
        fprintf(stderr, "memx-dedupbench: needs --config, 1..%d PATHs, 1..%d guests, fractions with "
                "unique + zero < 1, a guest size of whole requests and 1..%d rounds (see --help)\n", MAX_SRC,
                MAX_GUESTS, MAX_ROUNDS);
        return 2;
    }
    mx_log_init("memx-dedupbench", MX_LOG_WARN);
    dedup_test_hooks(NULL, opt.cache_pages);

    opt.image_pages = opt.guest_pages - (uint64_t)(opt.unique * (double)opt.guest_pages) -
                      (uint64_t)(opt.zero * (double)opt.guest_pages);
    image = malloc(opt.image_pages * PG);
    /* Each PATH gets an equal share of what is left: a kernel, its modules
     * and libraries all make it in, not the first 20 MiB of one tree. */
    for (int i = optind; i < argc; i++) {
        image_quota = image_have + (opt.image_pages - image_have) / (uint64_t)(argc - i);
        src[nsrc].path = argv[i];
        src[nsrc].first = image_have;
        nsrc++;
        add_path(argv[i]);
        src[nsrc - 1].n = image_have - src[nsrc - 1].first;
    }
    if (image_have == 0) {
        fprintf(stderr, "memx-dedupbench: no readable file under the given paths\n");
        return 2;
    }
    classify_image();
    img_reloc = calloc(image_have, sizeof(*img_reloc));
    if (!img_reloc)
        abort();
    for (int i = 0; i < nsrc; i++) {
        const char *base = strrchr(src[i].path, '/');
        base = base ? base + 1 : src[i].path;
        src[i].kernel = strncmp(base, "vmlinu", 6) == 0 || strstr(src[i].path, "/lib/modules/") != NULL;
        for (uint64_t k = src[i].first; k < src[i].first + src[i].n; k++)
            img_reloc[k] = src[i].kernel;
    }

    /* The CPU cost de-duplication adds per stored page, without pool noise:
     * from memory (the whole image, as a cold page would be) and in cache
     * (the data path hashes a page right after the grant copy brought it in). */
    uint64_t sink = 0, h0 = evloop_now_ns();
    for (int rep = 0; rep < 4; rep++)
        for (uint64_t i = 0; i < image_have; i++)
            sink += dedup_hash(image + i * PG).lo;
    double hash_mem_ns = (double)(evloop_now_ns() - h0) / (4.0 * (double)image_have);
    h0 = evloop_now_ns();
    for (int rep = 0; rep < 100000; rep++)
        sink += dedup_hash(image + (uint64_t)(rep & 7) % image_have * PG).lo;
    double hash_cache_ns = (double)(evloop_now_ns() - h0) / 100000.0;
    uint8_t *copy = malloc(PG);
    if (!copy)
        abort();
    memcpy(copy, image, PG);
    h0 = evloop_now_ns();
    for (int rep = 0; rep < 100000; rep++) {
        __asm__ volatile("" ::: "memory");      /* keeps the compare inside the loop */
        sink += (uint64_t)memcmp(image, copy, PG);
    }
    double cmp_cache_ns = (double)(evloop_now_ns() - h0) / 100000.0;
    free(copy);
    double idx_first_ns, idx_unique_ns, idx_dup_ns;
    index_cost(&idx_first_ns, &idx_unique_ns, &idx_dup_ns);

    struct memx_config cfg;
    char err[512];
    uint8_t key[MEMX_KEY_BYTES];
    memx_config_defaults(&cfg);
    if (memx_config_load(&cfg, config, err, sizeof(err)) || memx_config_load_key(&cfg, key, err, sizeof(err))) {
        fprintf(stderr, "memx-dedupbench: %s\n", err);
        return 2;
    }
    struct evloop *el = evloop_new();
    struct pool_opts po;
    pool_opts_from_config(&po, &cfg);
    struct pool *pool = pool_new(el, &po, key, err, sizeof(err));
    if (!pool) {
        fprintf(stderr, "memx-dedupbench: %s\n", err);
        return 1;
    }
    uint64_t t0 = evloop_now_ms();
    while (pool_live_servers(pool) < cfg.nservers && evloop_now_ms() - t0 < 10000)
        evloop_run_once(el, 50);
    if (pool_live_servers(pool) < cfg.nservers) {
        fprintf(stderr, "memx-dedupbench: only %d of %d memory servers up after 10 s\n", pool_live_servers(pool),
                cfg.nservers);
        return 1;
    }

    uint64_t image_zero = 0, image_distinct = 0;
    for (uint64_t i = 0; i < image_have; i++) {
        image_zero += img_zero[i];
        image_distinct += !img_zero[i] && canon[i] == i;
    }
    printf("image: %llu pages (%.1f MiB) from %llu files: %llu zero, %llu distinct non-zero; %d guests x %.0f MiB: "
           "%.0f%% image, %.0f%% unique, %.0f%% zero; churn %.0f%% of memory; %u pages/request, QD %u; "
           "replicas %d on %d servers; %u rounds\n",
           (unsigned long long)image_have, mib(image_have), (unsigned long long)files_read,
           (unsigned long long)image_zero, (unsigned long long)image_distinct, opt.guests,
           (double)gsize / (1 << 20), 100 * (1 - opt.unique - opt.zero), 100 * opt.unique, 100 * opt.zero,
           100 * opt.churn, opt.io_pages, opt.qd, cfg.replicas, cfg.nservers, opt.rounds);
    for (int i = 0; i < nsrc; i++) {
        uint64_t z = 0, inner = 0;
        for (uint64_t k = src[i].first; k < src[i].first + src[i].n; k++) {
            z += img_zero[k];
            inner += !img_zero[k] && canon[k] != k;
        }
        printf("  %-60s %6llu pages from %5llu files: %5llu zero, %5llu equal to an earlier image page%s\n",
               src[i].path, (unsigned long long)src[i].n, (unsigned long long)src[i].files, (unsigned long long)z,
               (unsigned long long)inner, src[i].kernel ? " (kernel code)" : "");
    }
    printf("XXH3-128 of a 4 KiB page: %.0f ns in cache, %.0f ns from memory; memcmp of equal pages in cache "
           "%.0f ns (check %llx)\n", hash_cache_ns, hash_mem_ns, cmp_cache_ns, (unsigned long long)(sink & 0xff));
    printf("CPU the content index adds per page written (no pool): new page %.0f ns (hash, lookup, index, cache "
           "copy; %.0f ns while a fresh byte cache is faulted in), duplicate %.0f ns (hash, lookup, compare with "
           "the cached copy)\n", idx_unique_ns, idx_first_ns, idx_dup_ns);
    if (image_have < opt.image_pages)
        printf("note: the files gave only %llu of %llu image pages: the image repeats\n",
               (unsigned long long)image_have, (unsigned long long)opt.image_pages);

    static struct result res[MAX_ROUNDS][2][NPHASE];   /* [round][dedup][phase] */
    uint64_t errors = 0;
    for (unsigned round = 0; round < opt.rounds; round++)
        for (int mode = 0; mode < 2; mode++) {
            /* Alternate which goes first: the pool warms up, and noise is ±20%. */
            bool dedup = (mode + round) % 2 == 0;
            struct result *r = res[round][dedup];
            if (run(el, pool, dedup, opt.mix, r) < 0)
                return 1;
            for (int p = 0; p < NPHASE; p++) {
                errors += r[p].errors;
                printf("round %u dedup %-3s %-11s %7.1f MB/s  write p50 %7.1f us  p99 %8.1f us  CPU %5.0f us/MiB"
                       "  (%.2f s)\n", round + 1, dedup ? "on" : "off", phase_name[p], r[p].mbps, r[p].p50,
                       r[p].p99, r[p].cpu_us_per_mib, r[p].secs);
            }
        }
    /* Swap-like steady state: what a guest swaps is anonymous memory, not its
     * page cache; the image share of the mix becomes unique data. */
    struct mix anon = { opt.mix.unique + opt.mix.image, 0, opt.mix.zero, opt.mix.discard };
    struct result ra[NPHASE];
    if (run(el, pool, true, anon, ra) < 0)
        return 1;
    for (int p = 0; p < NPHASE; p++)
        errors += ra[p].errors;
    struct ab ab;
    if (ab_cost(el, pool, &ab) < 0)
        return 1;

    printf("\npages (host-wide; the page contents are the same in every round):\n");
    const struct result *on = res[0][1], *off = res[0][0];
    char what[160];
    snprintf(what, sizeof(what), "after boot (%d guests from one image):", opt.guests);
    print_savings(what, &on[P_BOOT].hs, off[P_BOOT].hs.stored_pages, &on[P_BOOT].best);
    {
        /* The guests' layouts are those of the last run's boot only until
         * churn rewrote them: rebuild them for the bound. */
        for (int g = 0; g < opt.guests; g++)
            make_layout(g);
        struct ideal kb = ideal_now(opt.guests, true);
        printf("    if kernel and module pages differed per guest (KASLR relocates them): best possible %5.1f%%"
               " (%.1f MiB stored)\n", pct(kb.logical - kb.stored, kb.logical), mib(kb.stored));
    }
    snprintf(what, sizeof(what), "after churn of %.0f%% of memory, page-cache mix (unique %u%%, image %u%%, zero %u%%, "
             "discard %u%%):", 100 * opt.churn, opt.mix.unique, opt.mix.image, opt.mix.zero, opt.mix.discard);
    print_savings(what, &on[P_CHURN].hs, off[P_CHURN].hs.stored_pages, &on[P_CHURN].best);
    snprintf(what, sizeof(what), "after churn of %.0f%% of memory, anonymous mix (unique %u%%, image 0%%, zero %u%%, "
             "discard %u%%):", 100 * opt.churn, anon.unique, anon.zero, anon.discard);
    /* Off stores every non-zero page (the two runs above measure it). */
    print_savings(what, &ra[P_CHURN].hs, ra[P_CHURN].best.logical - ra[P_CHURN].best.zero, &ra[P_CHURN].best);
    const struct volumes_stats *h = &on[P_CHURN].hs;
    printf("  de-dup index after churn: %llu hits (%llu found after their own write), %llu hash collisions, "
           "%llu compares read back from the pool, %llu pages indexed, %llu cached\n",
           (unsigned long long)h->dedup_hits, (unsigned long long)h->late_hits, (unsigned long long)h->collisions,
           (unsigned long long)h->compare_reads, (unsigned long long)h->index_pages,
           (unsigned long long)h->cached_pages);

    printf("\nwrite throughput, latency and backend CPU per MiB written, median of %u rounds "
           "(QD %u x %u pages; qd1-*: QD1 x 1 page):\n", opt.rounds, opt.qd, opt.io_pages);
    double med[2][NPHASE][4];
    for (int m = 0; m < 2; m++)
        for (int p = 0; p < NPHASE; p++) {
            double v[4][MAX_ROUNDS];
            for (unsigned r = 0; r < opt.rounds; r++) {
                v[0][r] = res[r][m][p].mbps;
                v[1][r] = res[r][m][p].p50;
                v[2][r] = res[r][m][p].p99;
                v[3][r] = res[r][m][p].cpu_us_per_mib;
            }
            for (int k = 0; k < 4; k++)
                med[m][p][k] = median(v[k], opt.rounds);
        }
    /* On vs off as the median of each round's ratio: the two runs of a round
     * are back to back, so load from outside this benchmark that drifts
     * across rounds cancels out; the range shows what is left of the noise. */
    double thr[NPHASE], thr_lo[NPHASE], thr_hi[NPHASE], lat[NPHASE];
    for (int p = 0; p < NPHASE; p++) {
        double t[MAX_ROUNDS], l[MAX_ROUNDS];
        for (unsigned r = 0; r < opt.rounds; r++) {
            t[r] = res[r][1][p].mbps / res[r][0][p].mbps;
            l[r] = res[r][1][p].p50 / res[r][0][p].p50;
        }
        thr[p] = median(t, opt.rounds);        /* sorts t */
        thr_lo[p] = t[0];
        thr_hi[p] = t[opt.rounds - 1];
        lat[p] = median(l, opt.rounds);
    }
    for (int p = 0; p < NPHASE; p++)
        printf("  %-11s off %7.1f MB/s p50 %7.1f us p99 %8.1f us CPU %5.0f us/MiB | on %7.1f MB/s p50 %7.1f us"
               " p99 %8.1f us CPU %5.0f us/MiB | on/off per round: throughput %+6.1f%% (%+.1f..%+.1f), p50 %+6.1f%%\n",
               phase_name[p], med[0][p][0], med[0][p][1], med[0][p][2], med[0][p][3], med[1][p][0], med[1][p][1],
               med[1][p][2], med[1][p][3], 100.0 * (thr[p] - 1), 100.0 * (thr_lo[p] - 1), 100.0 * (thr_hi[p] - 1),
               100.0 * (lat[p] - 1));
    if (errors)
        printf("write errors: %llu\n", (unsigned long long)errors);
    printf("\nsteady state, page-cache churn mix: dedup savings %.1f%%\n",
           pct(h->zero_pages + h->dup_pages, h->logical_pages));
    printf("steady state, anonymous churn mix: dedup savings %.1f%%\n",
           pct(ra[P_CHURN].hs.zero_pages + ra[P_CHURN].hs.dup_pages, ra[P_CHURN].hs.logical_pages));
    printf("cost where nothing is shared (unique pages), on and off interleaved in %u slices of %u pages at QD %u: "
           "throughput off %.1f MB/s, on %.1f MB/s, on/off per slice %+.1f%% (quartiles %+.1f..%+.1f); "
           "QD1 write p50 off %.1f us, on %.1f us (%+.1f%%), p99 off %.1f us, on %.1f us\n", ab.slices,
           AB_SLICE_PAGES, opt.qd, ab.mbps[0], ab.mbps[1], 100.0 * (ab.thr - 1), 100.0 * (ab.thr_q1 - 1),
           100.0 * (ab.thr_q3 - 1), ab.p50[0], ab.p50[1], 100.0 * (ab.p50[1] / ab.p50[0] - 1), ab.p99[0], ab.p99[1]);
    printf("the %d-guest image workload (after boot), the issue's target of >= 85%%:\n", opt.guests);
    printf("dedup savings %.1f%%\n",
           pct(on[P_BOOT].hs.zero_pages + on[P_BOOT].hs.dup_pages, on[P_BOOT].hs.logical_pages));
    pool_free(pool);
    evloop_free(el);
    return errors ? 1 : 0;
}
