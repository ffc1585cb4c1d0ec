/* memx-io-history.c — per-page write history (memx-io.h): hwrite writes
 * pages whose bytes name the write that made them and logs every write it
 * issues and every one acknowledged; history-verify reads every page back
 * and checks it against those logs, so a fault test can tell the last
 * acknowledged write of a page (or a later one that was in flight) from an
 * older one, another page's, one never issued, a foreign writer's or
 * garbage, and can see a write a fenced owner issued after its fence.
 *
 * A request is a write of 1 to --bs/4096 pages (one generation per request)
 * or, a --discard-fraction of them, a discard of such a run.  Each page of a
 * write is one of
 *   stamp  magic, writer, page, generation, issue time (CLOCK_REALTIME ns,
 *          comparable across the namespaces of one machine and with
 *          date +%s.%N), a check word over those, then words that follow
 *          from them alone: the bytes of that one write of that one page;
 *   zero   all zeros (--zero-fraction: the backend keeps only a record);
 *   dupK   one of DUP_CLASSES pages per writer, the same bytes wherever they
 *          are written (--dup-fraction: the backend stores one copy);
 * and a discarded page reads as zeros (a record of no page).  So every kind
 * of page-map record the backend publishes is exercised, in one request too.
 *
 * Log: "# memx-io history writer W", then "i PAGE GEN ISSUE_NS KIND" for
 * each page of a request before it is submitted and "a PAGE GEN ISSUE_NS
 * ACK_NS KIND" for each once it is acknowledged, KIND stamp, zero, discard
 * or dupK.  The lines are flushed (fflush: then they are the kernel's and
 * outlive any process, the writer's included; only a machine crash, which
 * no test makes, would need fsync) before the next request is submitted:
 * a write the log does not name was never issued, an "a" line is a write
 * the backend acknowledged.  A writer keeps at most one write per page in
 * flight, so per writer and page the generations are issued and
 * acknowledged in order: after its last acknowledged write a page may hold
 * only that write or a later one of the same writer that was never
 * acknowledged (in flight when the backend died, or failed).
 */
#include "memx-io.h"
#include "memx-io-job.h"
#include "memxfront.h"
#include "pattern.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H_MAGIC    0x31305453494858ull   /* "XHIST01" */
#define H_DUPMAGIC 0x31305055444858ull   /* "XHDUP01" */
#define H_WORDS (PAT_PAGE / 8)
#define DUP_CLASSES 4

/* What a write put in a page: K_DUP + k is dup class k. */
enum { K_STAMP, K_ZERO, K_DISCARD, K_DUP };

static const char *kind_name(unsigned k, char *buf, size_t len)
{
    static const char *const names[] = { "stamp", "zero", "discard" };
    if (k < K_DUP)
        return names[k];
    snprintf(buf, len, "dup%u", k - K_DUP);
    return buf;
}

/* -1: not a kind. */
static int kind_parse(const char *s)
{
    unsigned k;
    char tail;
    if (!strcmp(s, "stamp"))
        return K_STAMP;
    if (!strcmp(s, "zero"))
        return K_ZERO;
    if (!strcmp(s, "discard"))
        return K_DISCARD;
    if (sscanf(s, "dup%u%c", &k, &tail) == 1 && k < DUP_CLASSES)
        return (int)(K_DUP + k);
    return -1;
}

static uint64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A page's contents: a stamp (writer, page, gen, issue_ns) or a dup page (writer, dupk). */
struct stamp { uint64_t writer, page, gen, issue_ns, dupk; };

static uint64_t stamp_check(const struct stamp *s)
{
    uint64_t x = s->writer ^ s->page * 0x9E3779B97F4A7C15ull ^ s->gen * 0xC2B2AE3D27D4EB4Full ^ s->issue_ns;
    return pat_mix(&x);
}

static uint64_t dup_check(uint64_t writer, uint64_t k)
{
    uint64_t x = writer * 0xD6E8FEB86659FD93ull ^ k * 0xA0761D6478BD642Full ^ H_DUPMAGIC;
    return pat_mix(&x);
}

/* Words 0-5 are said by the caller, the rest follow from x. */
static void fill_rest(uint64_t *w, unsigned from, uint64_t x)
{
    for (unsigned i = from; i < H_WORDS; i++)
        w[i] = pat_mix(&x);
}

static void stamp_fill(uint8_t *pg, const struct stamp *s)
{
    uint64_t *w = (uint64_t *)(void *)pg, x = stamp_check(s);
    w[0] = H_MAGIC, w[1] = s->writer, w[2] = s->page, w[3] = s->gen, w[4] = s->issue_ns, w[5] = x;
    fill_rest(w, 6, x);
}

static void dup_fill(uint8_t *pg, uint64_t writer, uint64_t k)
{
    uint64_t *w = (uint64_t *)(void *)pg, x = dup_check(writer, k);
    w[0] = H_DUPMAGIC, w[1] = writer, w[2] = k, w[3] = x;
    fill_rest(w, 4, x);
}

enum found { F_ZERO, F_STAMP, F_DUP, F_GARBAGE };

static bool rest_ok(const uint64_t *w, unsigned from, uint64_t x)
{
    for (unsigned i = from; i < H_WORDS; i++)
        if (w[i] != pat_mix(&x))
            return false;
    return true;
}

static enum found stamp_parse(const uint8_t *pg, struct stamp *s)
{
    const uint64_t *w = (const uint64_t *)(const void *)pg;
    uint64_t any = 0;
    for (unsigned i = 0; i < H_WORDS; i++)
        any |= w[i];
    if (!any)
        return F_ZERO;
    if (w[0] == H_DUPMAGIC) {
        *s = (struct stamp){ .writer = w[1], .dupk = w[2] };
        return w[2] < DUP_CLASSES && w[3] == dup_check(w[1], w[2]) && rest_ok(w, 4, w[3]) ? F_DUP : F_GARBAGE;
    }
    if (w[0] != H_MAGIC)
        return F_GARBAGE;
    *s = (struct stamp){ w[1], w[2], w[3], w[4], 0 };
    uint64_t x = stamp_check(s);
    return w[5] == x && rest_ok(w, 6, x) ? F_STAMP : F_GARBAGE;
}

/* ---- hwrite ---- */

/* SIGTERM/SIGINT: issue nothing more, give what is in flight 2 s (a stuck pool must not hang
 * the run: clock_gettime is async-signal-safe, and the 64-bit store is one instruction). */
static volatile sig_atomic_t stop_asked;
static struct job *stop_job;
static void on_stop(int sig)
{
    (void)sig;
    stop_asked = 1;
    if (stop_job)
        stop_job->give_up_ns = now_ns() + 2000000000ull;
}

struct hw {
    FILE *log;
    uint64_t gen, end_ns, acked, last_ack, max_gap, gap_at;
    uint64_t *inflight_gen;      /* per page: the write in flight (0: none) */
    uint64_t *issue;             /* per page: its issue time */
    uint8_t *kind;               /* per page: what it writes there */
    uint8_t *was_acked;          /* per page: an earlier write of it was acknowledged */
    unsigned max_pages;          /* per request (--bs) */
    uint64_t nkind[K_DUP + 1];   /* acknowledged pages by kind (every dup class in the last) */
    uint64_t multi, rewrites;    /* acknowledged multi-page requests; acknowledged pages written before */
};

static double frand(struct job *j) { return (double)(pat_mix(&j->rng) >> 11) / 9007199254740992.0; }

static void log_line(struct hw *h, char t, uint64_t page, uint64_t gen, uint64_t issue, uint64_t ack, unsigned k)
{
    char kb[16];
    if (t == 'i')
        fprintf(h->log, "i %" PRIu64 " %" PRIu64 " %" PRIu64 " %s\n", page, gen, issue, kind_name(k, kb, sizeof(kb)));
    else
        fprintf(h->log, "a %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %s\n", page, gen, issue, ack,
                kind_name(k, kb, sizeof(kb)));
}

static int gen_hwrite(struct job *j, struct op *o)
{
    struct hw *h = j->ctx;
    const struct args *a = j->a;
    uint64_t p;
    for (;;) {
        if (stop_asked || (j->count >= j->npages && (!h->end_ns || now_ns() >= h->end_ns)))
            return 0;
        if (!job_next_page(j, &p))
            return 0;
        if (!j->page_busy[p])
            break;
        j->count++;             /* first pass: a multi-page write in flight has this page */
    }
    unsigned n = h->max_pages > 1 ? 1 + (unsigned)(pat_mix(&j->rng) % h->max_pages) : 1;
    for (unsigned i = 1; i < n; i++)
        if (p + i >= j->npages || j->page_busy[p + i]) {
            n = i;
            break;
        }
    bool discard = a->discard_frac > 0 && frand(j) < a->discard_frac;
    uint64_t gen = ++h->gen, issue = real_ns(), first = j->base / PAT_PAGE;
    for (unsigned i = 0; i < n; i++) {
        uint8_t *pg = o->buf + (size_t)i * PAT_PAGE;
        double r = frand(j);
        unsigned k;
        if (discard) {
            k = K_DISCARD;
        } else if (r < a->zero_frac) {
            k = K_ZERO;
            memset(pg, 0, PAT_PAGE);
        } else if (r < a->zero_frac + a->dup_frac) {
            k = K_DUP + (unsigned)(pat_mix(&j->rng) % DUP_CLASSES);
            dup_fill(pg, a->writer, k - K_DUP);
        } else {
            k = K_STAMP;
            stamp_fill(pg, &(struct stamp){ a->writer, first + p + i, gen, issue, 0 });
        }
        h->inflight_gen[p + i] = gen;
        h->issue[p + i] = issue;
        h->kind[p + i] = (uint8_t)k;
        log_line(h, 'i', first + p + i, gen, issue, 0, k);
    }
    /* In the log before the backend can see it: whatever a page holds, the log names. */
    fflush(h->log);
    o->kind = discard ? OP_DISCARD : OP_WRITE;
    o->page = p;
    o->npages = n;
    j->count++;
    return 1;
}

static void hwrite_done(struct job *j, struct op *o, int status)
{
    struct hw *h = j->ctx;
    uint64_t now = real_ns(), first = j->base / PAT_PAGE;
    if (!status) {
        /* An "a" line is an acknowledged write: history-verify holds the pool to it. */
        for (unsigned i = 0; i < o->npages; i++) {
            uint64_t p = o->page + i;
            unsigned k = h->kind[p];
            log_line(h, 'a', first + p, h->inflight_gen[p], h->issue[p], now, k);
            h->nkind[k < K_DUP ? k : K_DUP]++;
            h->rewrites += h->was_acked[p];
            h->was_acked[p] = 1;
        }
        fflush(h->log);
        h->multi += o->npages > 1;
        if (h->last_ack && now - h->last_ack > h->max_gap)
            h->max_gap = now - h->last_ack, h->gap_at = h->last_ack;
        h->last_ack = now;
        h->acked += o->npages;
    } else if (j->errors <= 5) {
        fprintf(stderr, "memx-io: hwrite %s of %u page(s) at page %" PRIu64 " (generation %" PRIu64 ") failed: %s\n",
                o->kind == OP_DISCARD ? "discard" : "write", o->npages, first + o->page, h->inflight_gen[o->page],
                strerror(-status));
    }
    for (unsigned i = 0; i < o->npages; i++)
        h->inflight_gen[o->page + i] = 0;
}

/* Completions after the command returned (memxfront_close fails what is left): nothing to log. */
static void late_done(struct job *j, struct op *o, int status) { (void)j, (void)o, (void)status; }

int cmd_hwrite(struct memxfront *f, const struct args *a)
{
    static struct job j;
    static struct hw h;
    if (!a->nlogs) {
        fprintf(stderr, "memx-io: hwrite needs --log FILE (and --writer N)\n");
        return 2;
    }
    if (a->bs % PAT_PAGE || a->bs == 0) {
        fprintf(stderr, "memx-io: --bs %" PRIu64 " must be a multiple of 4096\n", a->bs);
        return 2;
    }
    if (a->discard_frac > 0 && !memxfront_info(f)->discard) {
        fprintf(stderr, "memx-io: the backend offers no discard\n");
        return 2;
    }
    h.max_pages = (unsigned)(a->bs / PAT_PAGE);
    if (job_init(&j, f, a, h.max_pages) < 0)
        return 2;
    h.inflight_gen = calloc(j.npages, sizeof(*h.inflight_gen));
    h.issue = calloc(j.npages, sizeof(*h.issue));
    h.kind = calloc(j.npages, 1);
    h.was_acked = calloc(j.npages, 1);
    h.log = fopen(a->logs[0], "w");
    if (!h.inflight_gen || !h.issue || !h.kind || !h.was_acked || !h.log) {
        fprintf(stderr, "memx-io: %s: %s\n", a->logs[0], strerror(errno));
        job_free(&j);
        return 2;
    }
    stop_job = &j;
    struct sigaction sa = { .sa_handler = on_stop };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    fprintf(h.log, "# memx-io history writer %" PRIu64 "\n", a->writer);
    fflush(h.log);
    uint64_t t0 = now_ns();
    h.end_ns = a->duration_ms ? t0 + a->duration_ms * 1000000ull : 0;
    /* Whatever the pool does, the run ends: 5 s after the duration, writes still in flight are left so. */
    j.give_up_ns = a->duration_ms ? h.end_ns + 5000000000ull : 0;
    j.ctx = &h;
    j.done = hwrite_done;
    j.gen = gen_hwrite;
    j.rng = a->writer * 0x9E3779B97F4A7C15ull ^ real_ns();
    for (uint64_t i = 0; i < j.npages; i++)
        j.perm[i] = i;
    for (uint64_t i = j.npages; i > 1; i--) {
        uint64_t k = pat_mix(&j.rng) % i, t = j.perm[i - 1];
        j.perm[i - 1] = j.perm[k];
        j.perm[k] = t;
    }
    double s = job_run(&j);
    job_report("hwrite", &j, s);
    uint64_t unacked = 0;
    for (uint64_t p = 0; p < j.npages; p++)
        unacked += h.inflight_gen[p] != 0;
    printf("hwrite: writer=%" PRIu64 " issued=%" PRIu64 " acked=%" PRIu64 " unacked=%" PRIu64 " io_errors=%" PRIu64
           " max_ack_gap_ms=%.0f gap_from=%.3f\n", a->writer, h.gen, h.acked, unacked, j.errors,
           (double)h.max_gap / 1e6, (double)h.gap_at / 1e9);
    printf("hwrite: acknowledged pages by kind stamp=%" PRIu64 " zero=%" PRIu64 " discard=%" PRIu64 " dup=%" PRIu64
           ", multi=%" PRIu64 " multi-page requests, rewrites=%" PRIu64 " pages written again\n", h.nkind[K_STAMP],
           h.nkind[K_ZERO], h.nkind[K_DISCARD], h.nkind[K_DUP], h.multi, h.rewrites);
    fclose(h.log);
    j.done = late_done;
    if (!j.inflight) {
        free(h.inflight_gen);
        free(h.issue);
        free(h.kind);
        free(h.was_acked);
    }
    job_free(&j);
    return j.errors || unacked ? 1 : 0;
}

/* ---- history-verify ---- */

/* One write of one page, from a writer's log (ack 0: never acknowledged). */
struct rec { uint64_t page, writer, gen, issue, ack; uint8_t kind; };

static int rec_cmp(const void *x, const void *y)
{
    const struct rec *a = x, *b = y;
    if (a->page != b->page)
        return a->page < b->page ? -1 : 1;
    if (a->writer != b->writer)
        return a->writer < b->writer ? -1 : 1;
    return a->gen < b->gen ? -1 : a->gen > b->gen;
}

struct hv {
    struct rec *r;
    size_t n, nacked;
    uint64_t writers[MEMX_IO_MAX_LOGS];
    unsigned nwriters;
    size_t *at;                  /* per page of the job (and one past): its first record in r */
    uint64_t fence_writer, fence_ns;
    uint64_t verified, lost, mismatches, fenced, inflight, zero;
    uint64_t held[3];            /* verified pages holding a stamp, zeros, a dup page */
};

static int load_log(struct hv *v, const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "memx-io: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[256];
    uint64_t w = 0;
    if (!fgets(line, sizeof(line), fp) || sscanf(line, "# memx-io history writer %" SCNu64, &w) != 1) {
        fprintf(stderr, "memx-io: %s: not a memx-io history log\n", path);
        fclose(fp);
        return -1;
    }
    for (unsigned i = 0; i < v->nwriters; i++)
        if (v->writers[i] == w) {
            fprintf(stderr, "memx-io: %s: writer %" PRIu64 " has two logs\n", path, w);
            fclose(fp);
            return -1;
        }
    v->writers[v->nwriters++] = w;
    size_t cap = v->n;
    while (fgets(line, sizeof(line), fp)) {
        struct rec r = { .writer = w };
        char kb[16] = "stamp";
        int k;
        if (line[0] == 'a') {
            int got = sscanf(line, "a %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %15s", &r.page, &r.gen,
                             &r.issue, &r.ack, kb);
            if (got < 4 || !r.ack)
                continue;       /* a line cut short by a killed writer */
        } else if (line[0] == 'i') {
            if (sscanf(line, "i %" SCNu64 " %" SCNu64 " %" SCNu64 " %15s", &r.page, &r.gen, &r.issue, kb) != 4)
                continue;
        } else {
            continue;
        }
        if ((k = kind_parse(kb)) < 0)
            continue;
        r.kind = (uint8_t)k;
        if (v->n == cap) {
            cap = cap ? cap * 2 : 4096;
            struct rec *n = realloc(v->r, cap * sizeof(*n));
            if (!n) {
                fclose(fp);
                return -1;
            }
            v->r = n;
        }
        v->r[v->n++] = r;
    }
    fclose(fp);
    return 0;
}

/* Sorted, then one record per write: an "a" line's over its "i" line. */
static void merge_recs(struct hv *v)
{
    qsort(v->r, v->n, sizeof(*v->r), rec_cmp);
    size_t out = 0;
    for (size_t i = 0; i < v->n; i++) {
        if (out && !rec_cmp(&v->r[out - 1], &v->r[i])) {
            if (v->r[i].ack)
                v->r[out - 1] = v->r[i];
            continue;
        }
        v->r[out++] = v->r[i];
    }
    v->n = out;
    for (size_t i = 0; i < v->n; i++)
        v->nacked += v->r[i].ack != 0;
}

static bool known_writer(const struct hv *v, uint64_t w)
{
    for (unsigned i = 0; i < v->nwriters; i++)
        if (v->writers[i] == w)
            return true;
    return false;
}

static void problem(struct hv *v, const char *what, uint64_t page, const struct rec *want, const struct stamp *s,
                    enum found fd)
{
    if (v->lost + v->mismatches + v->fenced > 10)
        return;
    char got[128], exp[128] = "nothing acknowledged", kb[16];
    if (fd == F_ZERO)
        snprintf(got, sizeof(got), "zeros");
    else if (fd == F_GARBAGE)
        snprintf(got, sizeof(got), "garbage");
    else if (fd == F_DUP)
        snprintf(got, sizeof(got), "writer %" PRIu64 "'s dup%" PRIu64 " page", s->writer, s->dupk);
    else
        snprintf(got, sizeof(got), "writer %" PRIu64 " page %" PRIu64 " generation %" PRIu64 " issued %.3f",
                 s->writer, s->page, s->gen, (double)s->issue_ns / 1e9);
    if (want)
        snprintf(exp, sizeof(exp), "writer %" PRIu64 " generation %" PRIu64 " (%s) acknowledged %.3f", want->writer,
                 want->gen, kind_name(want->kind, kb, sizeof(kb)), (double)want->ack / 1e9);
    fprintf(stderr, "memx-io: %s at page %" PRIu64 ": last acknowledged %s, found %s\n", what, page, exp, got);
}

/* Whether write r made the bytes found. */
static bool rec_made(const struct rec *r, enum found fd, const struct stamp *s)
{
    switch (fd) {
    case F_ZERO: return r->kind == K_ZERO || r->kind == K_DISCARD;
    case F_STAMP: return r->kind == K_STAMP && r->writer == s->writer && r->gen == s->gen;
    case F_DUP: return r->kind == K_DUP + s->dupk && r->writer == s->writer;
    default: return false;
    }
}

/* Whether the page may hold write r when l is its last acknowledged write (NULL: none): l itself, a
 * later write of l's writer (never acknowledged: in flight or failed), or another writer's not over
 * before l began.  An unacknowledged one issued before l is an old owner's write landing over a newer one. */
static bool rec_allowed(const struct rec *r, const struct rec *l)
{
    if (!l || r == l)
        return true;
    if (r->writer == l->writer)
        return r->gen > l->gen;
    return r->ack ? r->ack >= l->issue : r->issue >= l->issue;
}

/* One page read back: is it the last acknowledged write, or a later one that was in flight? */
static void classify(struct hv *v, uint64_t page, const struct rec *lo, const struct rec *hi, const uint8_t *pg)
{
    struct stamp s = { 0 };
    enum found fd = stamp_parse(pg, &s);
    const struct rec *l = NULL;
    for (const struct rec *r = lo; r < hi; r++)
        if (r->ack && (!l || r->ack > l->ack))
            l = r;
    if (fd == F_GARBAGE || (fd == F_STAMP && s.page != page) || (fd != F_ZERO && !known_writer(v, s.writer))) {
        v->mismatches++;
        problem(v, fd == F_GARBAGE ? "MISMATCH (garbage)" : fd == F_STAMP && s.page != page ?
                "MISMATCH (another page's write)" : "MISMATCH (a writer with no log)", page, l, &s, fd);
        return;
    }
    bool made = false, fenced = false;
    for (const struct rec *r = lo; r < hi; r++) {
        if (!rec_made(r, fd, &s))
            continue;
        made = true;
        if (v->fence_ns && r->writer == v->fence_writer && r->issue > v->fence_ns) {
            fenced = true;
        } else if (rec_allowed(r, l)) {
            v->verified++;
            v->inflight += r != l;
            v->held[fd == F_STAMP ? 0 : fd == F_ZERO ? 1 : 2]++;
            return;
        }
    }
    if (fd == F_ZERO && !l) {
        v->verified++;          /* nothing acknowledged here: as it was, or a write in flight */
        v->zero++;
        v->held[1]++;
        return;
    }
    if (fenced) {
        v->fenced++;
        problem(v, "FENCED WRITER'S WRITE", page, l, &s, fd);
    } else if (made || fd == F_ZERO) {
        v->lost++;
        problem(v, fd == F_ZERO ? "LOST (reads as zeros)" : "LOST (an older write)", page, l, &s, fd);
    } else {
        v->mismatches++;
        problem(v, "MISMATCH (a write never issued to this page)", page, l, &s, fd);
    }
}

static void hverify_done(struct job *j, struct op *o, int status)
{
    struct hv *v = j->ctx;
    if (status) {
        if (j->errors <= 5)
            fprintf(stderr, "memx-io: read at page %" PRIu64 " failed: %s\n", j->base / PAT_PAGE + o->page,
                    strerror(-status));
        return;
    }
    for (unsigned i = 0; i < o->npages; i++) {
        uint64_t p = o->page + i;
        classify(v, j->base / PAT_PAGE + p, v->r + v->at[p], v->r + v->at[p + 1], o->buf + (size_t)i * PAT_PAGE);
    }
}

static int gen_hread(struct job *j, struct op *o)
{
    if (j->next >= j->npages)
        return 0;
    unsigned n = (unsigned)(j->a->bs / PAT_PAGE);
    if (j->next + n > j->npages)
        n = (unsigned)(j->npages - j->next);
    o->kind = OP_READ;
    o->page = j->next;
    o->npages = n;
    j->next += n;
    return 1;
}

int cmd_history_verify(struct memxfront *f, const struct args *a)
{
    static struct job j;
    static struct hv v;
    v.fence_writer = a->fence_writer;
    v.fence_ns = a->fence_ns;
    if (!a->nlogs) {
        fprintf(stderr, "memx-io: history-verify needs --log FILE (one per writer)\n");
        return 2;
    }
    if (a->bs % PAT_PAGE || a->bs == 0) {
        fprintf(stderr, "memx-io: --bs %" PRIu64 " must be a multiple of 4096\n", a->bs);
        return 2;
    }
    if (job_init(&j, f, a, (unsigned)(a->bs / PAT_PAGE)) < 0)
        return 2;
    for (unsigned i = 0; i < a->nlogs; i++)
        if (load_log(&v, a->logs[i]) < 0) {
            job_free(&j);
            return 2;
        }
    merge_recs(&v);
    v.at = calloc(j.npages + 1, sizeof(*v.at));
    if (!v.at) {
        job_free(&j);
        return 2;
    }
    uint64_t first = j.base / PAT_PAGE;
    size_t i = 0;
    while (i < v.n && v.r[i].page < first)
        i++;
    for (uint64_t p = 0; p <= j.npages; p++) {
        while (i < v.n && v.r[i].page < first + p)
            i++;
        v.at[p] = i;
    }
    j.ctx = &v;
    j.done = hverify_done;
    j.gen = gen_hread;
    double s = job_run(&j);
    job_report("read", &j, s);
    uint64_t unread = j.npages - v.verified - v.lost - v.mismatches - v.fenced;
    printf("history-verify: %" PRIu64 " pages verified, %" PRIu64 " lost, %" PRIu64 " mismatches, %" PRIu64
           " from a fenced writer (%zu writes, %zu acknowledged, in %u log(s); %" PRIu64 " pages hold a write in"
           " flight, %" PRIu64 " no acknowledged write; pages hold %" PRIu64 " stamps, %" PRIu64 " zeros, %" PRIu64
           " dup pages; %" PRIu64 " unread)\n", v.verified, v.lost, v.mismatches, v.fenced, v.n, v.nacked,
           v.nwriters, v.inflight, v.zero, v.held[0], v.held[1], v.held[2], unread);
    printf("history-verify: verified=%" PRIu64 " lost=%" PRIu64 " mismatches=%" PRIu64 " fenced=%" PRIu64
           " inflight=%" PRIu64 " unread=%" PRIu64 " io_errors=%" PRIu64 "\n", v.verified, v.lost, v.mismatches,
           v.fenced, v.inflight, unread, j.errors);
    int rc = v.lost || v.mismatches || v.fenced || unread || j.errors ? 1 : 0;
    j.done = late_done;
    if (!j.inflight) {
        free(v.at);
        free(v.r);
    }
    job_free(&j);
    return rc;
}
