/* memx-dedupbench — the VM-creation workload behind `make bench-dedup`.
 *
 * Links the real volume layer, content index and pool client and talks to the
 * memory servers in the config (tools/bench-dedup.sh starts them on loopback).
 * The guest image is real bytes: the files named on the command line (a
 * kernel, its modules, a root filesystem's libraries), page by page as the
 * page cache holds them.  Each guest's memory is that image in its own
 * (seeded) page order, plus a unique fraction and zero pages; all guests
 * "boot together" (their writes interleave), then churn in steady state.
 * The same workload runs with de-duplication on and off, alternating, against
 * the same pool; a last phase writes only unique pages: pure hashing cost.
 */
#include "config.h"
#include "evloop.h"
#include "histo.h"
#include "log.h"
#include "pool.h"
#include "volume.h"
#include "dedup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG VOLUME_PAGE_SIZE
#define SPP (VOLUME_PAGE_SIZE / VOLUME_SECTOR_SIZE)
#define MAX_GUESTS 64

static struct {
    int guests;
    uint64_t guest_pages, image_pages;
    double unique, zero, churn;
    unsigned qd, io_pages, rounds;
    long cache_pages;
} opt = { 8, 0, 0, 0.05, 0.25, 0.25, 32, 8, 2, -1 };

/* ---- the image ------------------------------------------------------------ */

static uint8_t *image;          /* image_pages pages */
static uint64_t image_have, image_quota, files_read;

static void add_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    files_read++;
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
    if (image_have >= image_quota || lstat(path, &st) < 0)
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

/* Guest g's page at idx: an image page, a unique page or zeros.  layout[g][idx]
 * is an image page index, UNIQUE or ZERO. */
#define UNIQUE UINT64_MAX
#define ZERO   (UINT64_MAX - 1)
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
    unsigned inflight;
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
    while (b->inflight >= opt.qd)
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

struct result {
    double secs, mbps;
    uint64_t p50, p99, errors;
    struct volumes_stats hs;
};

static void phase_begin(struct bench *b)
{
    histo_reset(&b->lat);
    b->bytes = b->errors = 0;
}

static void phase_end(struct bench *b, uint64_t t0, struct result *r)
{
    drain(b);
    r->secs = (double)(evloop_now_ns() - t0) / 1e9;
    r->mbps = (double)b->bytes / r->secs / 1e6;
    r->p50 = histo_quantile(&b->lat, 0.50);
    r->p99 = histo_quantile(&b->lat, 0.99);
    r->errors = b->errors;
    volumes_get_stats(b->vs, &r->hs);
}

/* Boot (all guests write their memory, interleaved), churn, then a phase of
 * unique pages only on a fresh volume. */
static int run(struct evloop *el, struct pool *pool, bool dedup, struct result res[3])
{
    struct bench b = { .el = el };
    b.vs = volumes_new(pool, dedup);
    if (!b.vs)
        return -1;
    b.ios = calloc(opt.qd, sizeof(*b.ios));
    for (unsigned i = 0; i < opt.qd; i++) {
        b.ios[i].b = &b;
        b.ios[i].buf = malloc((size_t)opt.io_pages * PG);
    }
    char err[200];
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
    uint64_t s = 7;
    phase_begin(&b);
    uint64_t t0 = evloop_now_ns();
    for (uint64_t idx = 0; idx < opt.guest_pages; idx += opt.io_pages)
        for (int g = 0; g < opt.guests; g++) {
            unsigned n = (unsigned)(opt.guest_pages - idx < opt.io_pages ? opt.guest_pages - idx : opt.io_pages);
            write_layout(&b, g, idx, n, &s);
        }
    phase_end(&b, t0, &res[0]);

    /* Steady state: guests rewrite parts of their memory: 35% new data, 40%
     * page cache contents (image pages), 20% zeros, 5% freed (discard). */
    uint64_t nreq = (uint64_t)(opt.churn * (double)opt.guest_pages * opt.guests / opt.io_pages);
    phase_begin(&b);
    t0 = evloop_now_ns();
    for (uint64_t i = 0; i < nreq; i++) {
        int g = (int)(rng(&s) % (uint64_t)opt.guests);
        uint64_t idx = rng(&s) % (opt.guest_pages / opt.io_pages) * opt.io_pages;
        uint64_t kind = rng(&s) % 100;
        if (kind < 5) {
            struct io *io = free_io(&b);
            io->busy = true;
            io->t0 = evloop_now_ns();
            b.inflight++;
            volume_discard(b.vol[g], idx * SPP, (uint64_t)opt.io_pages * SPP, on_io, io);
            continue;
        }
        for (unsigned k = 0; k < opt.io_pages; k++)
            layout[g][idx + k] = kind < 40 ? UNIQUE : kind < 80 ? rng(&s) % image_have : ZERO;
        write_layout(&b, g, idx, opt.io_pages, &s);
    }
    phase_end(&b, t0, &res[1]);

    /* Unique pages only: every page hashed and looked up, none shared. */
    for (int g = 0; g < opt.guests; g++) {
        volume_detach(b.vol[g]);
        char name[32];
        snprintf(name, sizeof(name), "guest%d", g);
        volume_delete(b.vs, name);
    }
    b.vol[0] = volume_attach(b.vs, "unique", opt.guest_pages * PG, "bench", err, sizeof(err));
    for (uint64_t i = 0; i < opt.guest_pages; i++)
        layout[0][i] = UNIQUE;
    phase_begin(&b);
    t0 = evloop_now_ns();
    for (int rep = 0; rep < 2; rep++)
        for (uint64_t idx = 0; idx < opt.guest_pages; idx += opt.io_pages)
            write_layout(&b, 0, idx, opt.io_pages, &s);
    phase_end(&b, t0, &res[2]);
    volume_detach(b.vol[0]);
    volume_delete(b.vs, "unique");

    for (unsigned i = 0; i < opt.qd; i++)
        free(b.ios[i].buf);
    free(b.ios);
    volumes_free(b.vs);
    return 0;
}

/* ---- report ------------------------------------------------------------------ */

static double pct(uint64_t a, uint64_t b) { return b ? 100.0 * (double)a / (double)b : 0.0; }

static void print_pages(const char *what, const struct volumes_stats *h)
{
    double mib = (double)PG / (1 << 20);
    printf("  %-12s logical %8.1f MiB  stored %8.1f MiB  | saved: zero pages %5.1f%%  duplicates %5.1f%%"
           "  total %5.1f%%\n", what, (double)h->logical_pages * mib, (double)h->stored_pages * mib,
           pct(h->zero_pages, h->logical_pages), pct(h->dup_pages, h->logical_pages),
           pct(h->zero_pages + h->dup_pages, h->logical_pages));
}

static void usage(FILE *f)
{
    fprintf(f, "usage: memx-dedupbench --config FILE [options] PATH...\n"
            "  PATH...              files or directories whose pages make the guest image (an equal share each)\n"
            "  --guests N           guests (volumes), default 8\n"
            "  --guest-size SIZE    memory per guest, default 32M\n"
            "  --unique F           per-guest unique fraction, default 0.05\n"
            "  --zero F             zero-page fraction, default 0.25\n"
            "  --churn F            steady-state writes as a fraction of all guest memory, default 0.25\n"
            "  --qd N               requests in flight, default 32\n"
            "  --io-pages N         pages per request, default 8\n"
            "  --rounds N           on/off alternations, default 2\n"
            "  --cache-pages N      de-dup byte cache size (default %u; 0: compare by pool read)\n",
            DEDUP_CACHE_PAGES);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", 1, 0, 'c' }, { "guests", 1, 0, 'g' }, { "guest-size", 1, 0, 's' }, { "unique", 1, 0, 'u' },
        { "zero", 1, 0, 'z' }, { "churn", 1, 0, 'C' }, { "qd", 1, 0, 'q' }, { "io-pages", 1, 0, 'p' },
        { "rounds", 1, 0, 'r' }, { "cache-pages", 1, 0, 'k' }, { "help", 0, 0, 'h' }, { 0, 0, 0, 0 } };
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
        case 'q': opt.qd = (unsigned)atoi(optarg); break;
        case 'p': opt.io_pages = (unsigned)atoi(optarg); break;
        case 'r': opt.rounds = (unsigned)atoi(optarg); break;
        case 'k': opt.cache_pages = atol(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    opt.guest_pages = gsize / PG;
    if (!config || optind >= argc || opt.guests < 1 || opt.guests > MAX_GUESTS || opt.qd < 1 || opt.io_pages < 1 ||
        opt.unique < 0 || opt.zero < 0 || opt.unique + opt.zero >= 1 || opt.guest_pages < 2ull * opt.io_pages ||
        opt.guest_pages % opt.io_pages || opt.rounds < 1) {
        fprintf(stderr, "memx-dedupbench: needs --config, at least one PATH, 1..%d guests, fractions with "
                "unique + zero < 1 and a guest size of whole requests (see --help)\n", MAX_GUESTS);
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
        add_path(argv[i]);
    }
    if (image_have == 0) {
        fprintf(stderr, "memx-dedupbench: no readable file under the given paths\n");
        return 2;
    }
    uint64_t image_zero = 0;
    for (uint64_t i = 0; i < image_have; i++)
        image_zero += image[i * PG] == 0 && memcmp(image + i * PG, image + i * PG + 1, PG - 1) == 0;
    /* The CPU cost de-duplication adds per stored page, without pool noise. */
    uint64_t h0 = evloop_now_ns(), sink = 0;
    for (int rep = 0; rep < 4; rep++)
        for (uint64_t i = 0; i < image_have; i++)
            sink += dedup_hash(image + i * PG).lo;
    double hash_ns = (double)(evloop_now_ns() - h0) / (4.0 * (double)image_have);

    struct memx_config cfg;
    char err[512];
    uint8_t key[MEMX_KEY_BYTES];
    memx_config_defaults(&cfg);
    if (memx_config_load(&cfg, config, err, sizeof(err)) || memx_config_load_key(&cfg, key, err, sizeof(err))) {
        fprintf(stderr, "memx-dedupbench: %s\n", err);
        return 2;
    }
    struct evloop *el = evloop_new();
    struct pool *pool = pool_new(el, &cfg, key, err, sizeof(err));
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

    printf("image: %llu pages (%.1f MiB) from %llu files, %llu of them zero; %d guests x %.0f MiB: "
           "%.0f%% image, %.0f%% unique, %.0f%% zero; churn %.0f%%; %u pages/request, QD %u; "
           "replicas %d on %d servers\n",
           (unsigned long long)image_have, (double)image_have * PG / (1 << 20), (unsigned long long)files_read,
           (unsigned long long)image_zero, opt.guests, (double)gsize / (1 << 20),
           100 * (1 - opt.unique - opt.zero), 100 * opt.unique, 100 * opt.zero, 100 * opt.churn, opt.io_pages,
           opt.qd, cfg.replicas, cfg.nservers);
    printf("XXH3-128 of a 4 KiB page: %.0f ns (check %llx)\n", hash_ns, (unsigned long long)(sink & 0xff));
    if (image_have < opt.image_pages)
        printf("note: the files gave only %llu of %llu image pages: the image repeats\n",
               (unsigned long long)image_have, (unsigned long long)opt.image_pages);

    static const char *phase[3] = { "boot", "churn", "unique-only" };
    struct result on[3] = { 0 }, off[3] = { 0 }, r[3];
    uint64_t errors = 0;
    for (unsigned round = 0; round < opt.rounds; round++)
        for (int mode = 0; mode < 2; mode++) {
            /* Alternate which goes first: the pool warms up, and noise is ±20%. */
            bool dedup = (mode + round) % 2 == 0;
            if (run(el, pool, dedup, r) < 0)
                return 1;
            struct result *acc = dedup ? on : off;
            for (int p = 0; p < 3; p++) {
                errors += r[p].errors;
                printf("round %u dedup %-3s %-11s %7.1f MB/s  write p50 %6.1f us  p99 %7.1f us  (%.2f s)\n",
                       round + 1, dedup ? "on" : "off", phase[p], r[p].mbps, (double)r[p].p50 / 1e3,
                       (double)r[p].p99 / 1e3, r[p].secs);
                acc[p].mbps += r[p].mbps / opt.rounds;
                acc[p].p50 += r[p].p50 / opt.rounds;
                acc[p].p99 += r[p].p99 / opt.rounds;
                acc[p].hs = r[p].hs;
            }
        }

    printf("\npages after each phase (host-wide; MiB of 4 KiB pages):\n");
    for (int p = 0; p < 2; p++) {
        char what[40];
        snprintf(what, sizeof(what), "%s, off", phase[p]);
        print_pages(what, &off[p].hs);
        snprintf(what, sizeof(what), "%s, on", phase[p]);
        print_pages(what, &on[p].hs);
    }
    const struct volumes_stats *h = &on[1].hs;
    printf("de-dup index: %llu hits (%llu found after their own write), %llu hash collisions, "
           "%llu compares read back from the pool\n",
           (unsigned long long)h->dedup_hits, (unsigned long long)h->late_hits, (unsigned long long)h->collisions,
           (unsigned long long)h->compare_reads);
    printf("\nwrite throughput and latency, mean of %u rounds:\n", opt.rounds);
    for (int p = 0; p < 3; p++)
        printf("  %-11s off %7.1f MB/s p50 %6.1f us p99 %7.1f us | on %7.1f MB/s p50 %6.1f us p99 %7.1f us"
               " | on/off throughput %+.1f%%\n", phase[p], off[p].mbps, (double)off[p].p50 / 1e3,
               (double)off[p].p99 / 1e3, on[p].mbps, (double)on[p].p50 / 1e3, (double)on[p].p99 / 1e3,
               100.0 * (on[p].mbps / off[p].mbps - 1));
    if (errors)
        printf("write errors: %llu\n", (unsigned long long)errors);
    printf("boot: dedup savings %.1f%%\n", pct(on[0].hs.zero_pages + on[0].hs.dup_pages, on[0].hs.logical_pages));
    printf("dedup savings %.1f%%\n", pct(h->zero_pages + h->dup_pages, h->logical_pages));
    pool_free(pool);
    evloop_free(el);
    return errors ? 1 : 0;
}
